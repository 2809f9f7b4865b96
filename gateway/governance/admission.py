"""Admission: between planning and dispatch, every endpoint asks `Governance.admit()`.

One call checks the caller's rate limits (its key's and its team's, requests and tokens
per minute) and reserves the request's worst-case cost in every budget it counts in (the
key's, the team's and the gateway's, per UTC day and month), atomically: one round trip
to a shared store, none when the caller has no limits. Whatever fallback routing then
takes stays inside the reservation, since it was priced on the dearest candidate.
Settlement (`settlement.py`) later replaces the reservation by the real cost.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import NamedTuple

from gateway.accounting import Admitted, RequestAccount
from gateway.auth import ANONYMOUS, BudgetLimit, Caller, RateLimit
from gateway.governance.ask import (
    NANO,
    WINDOW_MS,
    Ask,
    BudgetAsk,
    RateAsk,
    RateState,
    Verdict,
    nano_usd,
)
from gateway.governance.config import GovernanceConfig
from gateway.governance.errors import BudgetExceeded, RateLimited
from gateway.governance.periods import PERIODS, period_end, period_id
from gateway.governance.store import GovernanceStore
from gateway.request_ids import new_request_id
from providers.errors import retry_after_header
from routing.plan import Plan


class _Profile(NamedTuple):
    charged: tuple[str, ...]  # buckets its spend is counted in: key's, team's, gateway's
    budgets: tuple[BudgetLimit, ...]
    budget_asks: tuple[BudgetAsk, ...]  # one per budget, in this period's bucket
    rate_keys: tuple[str, ...]  # one per caller.rates
    token_limits: tuple[tuple[str, int], ...]  # (tpm key, limit) to settle tokens on
    # one per caller.rates: its ask when that never changes (rpm: cost 1), else None
    fixed_asks: tuple[RateAsk | None, ...]
    # per kind with limits: (its header names, the (index, limit) of each of its rates)
    header_groups: tuple[tuple[tuple[str, str, str], tuple[tuple[int, int], ...]], ...]


BUDGET_DENIAL_MS = 250  # a refused budget is refused locally this long (floods cost nothing)
_KINDS = (("rpm", "requests"), ("tpm", "tokens"))


def reset_text(ms: int) -> str:
    """A duration as OpenAI writes `x-ratelimit-reset-*`: `120ms`, `7.5s`, `6m0s`."""
    if ms < 1000:
        return f"{max(ms, 0)}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{round(rest, 3):g}s"


def worst_case_usd(plan: Plan, prompt_tokens: int, output_tokens: int) -> float:
    """The request's cost if it went to the dearest candidate and wrote its whole limit."""
    input_price = max(c.deployment.prices.input_per_mtok for c in plan.candidates)
    output_price = max(c.deployment.prices.output_per_mtok for c in plan.candidates)
    return (prompt_tokens * input_price + output_tokens * output_price) / 1_000_000


def output_ceiling(plan: Plan, requested: int | None, default: int) -> int:
    """`max_tokens` when the client set one, else the largest maximum output among the
    candidates (`default` for those whose maximum is unknown)."""
    if requested is not None:
        return requested
    return max(c.deployment.capabilities.max_output_tokens or default for c in plan.candidates)


class Governance:
    def __init__(
        self,
        config: GovernanceConfig,
        store: GovernanceStore,
        deadline: float,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self._clock = clock
        self._hold_ms = int((deadline + config.hold_margin) * 1000)
        self._global: tuple[BudgetLimit, ...] = ()
        if config.budget_usd is not None:
            self._global = tuple(
                BudgetLimit("all", period, usd)
                for period in PERIODS
                if (usd := getattr(config.budget_usd, period)) is not None
            )
        # rate key or budget bucket → (refused until (ms), the reservation it refused)
        self._denied: dict[str, tuple[int, int]] = {}
        self._period = (0.0, "", "")  # (ends at, day id, month id) of the current UTC day
        self._profiles: dict[int, tuple[Caller, _Profile]] = {}  # id(caller) → its profile
        # rate key → (remaining, reset ms, when): what a refusal's headers say of the others
        self._last: dict[str, tuple[int, int, int]] = {}

    async def admit(
        self,
        account: RequestAccount,
        caller: Caller,
        plan: Plan,
        *,
        output_tokens: int | None,
        prompt_tokens: int | None = None,
    ) -> None:
        """Admit the request or raise RateLimited / BudgetExceeded (429). On admission the
        account holds what was taken, and the rate-limit headers every answer carries.
        `output_tokens`: the client's output limit (None: not set); `prompt_tokens`: the
        plan's estimate unless given."""
        if prompt_tokens is None:
            prompt_tokens = plan.prompt_tokens
        now = self._clock()
        profile = self._profile(caller, now)
        if not caller.rates and not profile.budgets:  # nothing to check; spend still counted
            account.admitted = Admitted(
                hold="", shared=True, usd=0.0, tokens=0, budgets=profile.charged
            )
            return
        # the rpm asks are built once per caller; a tpm ask costs this request's tokens
        tokens = prompt_tokens + (output_tokens or 0)
        asks: list[RateAsk] = []
        for fixed, key, limit in zip(
            profile.fixed_asks, profile.rate_keys, caller.rates, strict=True
        ):
            if fixed is None:
                fixed = RateAsk(key, limit.limit, self._cost(limit, prompt_tokens, output_tokens))
            asks.append(fixed)
        rates = tuple(asks)
        amount = 0
        if profile.budget_asks:
            ceiling = output_ceiling(plan, output_tokens, self.config.default_max_output_tokens)
            amount = nano_usd(worst_case_usd(plan, prompt_tokens, ceiling))
        ask = Ask(
            hold=new_request_id() if profile.budget_asks else "",
            rates=rates,
            budgets=profile.budget_asks,
            amount=amount,
            hold_ms=self._hold_ms,
        )
        budgets = profile.budgets
        self._refuse_known(caller, ask, budgets, now)
        verdict = await self.store.admit(ask)
        if not verdict.allowed:
            self._refuse(caller, ask, budgets, verdict, now)
        if verdict.rates:
            now_ms = int(now * 1000)
            for rate, state in zip(ask.rates, verdict.rates, strict=True):
                self._last[rate.key] = (state.remaining, state.reset_ms, now_ms)
        if profile.header_groups:
            _admitted_headers(account.headers, profile.header_groups, verdict.rates)
        account.admitted = Admitted(
            hold=ask.hold,
            shared=verdict.shared,
            usd=amount / NANO,
            nano_usd=amount,
            tokens=tokens,
            budgets=profile.charged,
            token_limits=profile.token_limits,
        )

    def _profile(self, caller: Caller, now: float) -> _Profile:
        """What admission asks for this caller in this UTC day, worked out once."""
        if now >= self._period[0]:
            self._period = (
                period_end("daily", now),
                period_id("daily", now),
                period_id("monthly", now),
            )
            self._profiles.clear()
        cached = self._profiles.get(id(caller))
        if cached is not None and cached[0] is caller:
            return cached[1]
        _, day, month = self._period
        periods = {"daily": ("d", day), "monthly": ("m", month)}
        scopes = ["all"]
        if caller is not ANONYMOUS:
            scopes.append(f"key:{caller.name}")
            if caller.team is not None:
                scopes.append(f"team:{caller.team}")
        budgets = caller.budgets + self._global
        rate_keys = tuple(f"{r.scope}:{r.kind}" for r in caller.rates)
        profile = _Profile(
            charged=tuple(f"{s}:{letter}:{p}" for s in scopes for letter, p in periods.values()),
            budgets=budgets,
            budget_asks=tuple(
                BudgetAsk(f"{b.scope}:{':'.join(periods[b.period])}", round(b.usd * NANO))
                for b in budgets
            ),
            rate_keys=rate_keys,
            token_limits=tuple(
                (key, r.limit)
                for key, r in zip(rate_keys, caller.rates, strict=True)
                if r.kind == "tpm"
            ),
            fixed_asks=tuple(
                RateAsk(key, r.limit, 1) if r.kind == "rpm" else None
                for key, r in zip(rate_keys, caller.rates, strict=True)
            ),
            header_groups=tuple(
                (
                    (
                        f"x-ratelimit-limit-{suffix}",
                        f"x-ratelimit-remaining-{suffix}",
                        f"x-ratelimit-reset-{suffix}",
                    ),
                    members,
                )
                for kind, suffix in _KINDS
                if (
                    members := tuple(
                        (i, r.limit) for i, r in enumerate(caller.rates) if r.kind == kind
                    )
                )
            ),
        )
        if len(self._profiles) > 10_000:  # callers are rebuilt on every key refresh
            self._profiles.clear()
        self._profiles[id(caller)] = (caller, profile)
        return profile

    @staticmethod
    def _cost(rate: RateLimit, prompt_tokens: int, output_tokens: int | None) -> int:
        if rate.kind == "rpm":
            return 1
        tokens = _tokens(prompt_tokens, output_tokens)
        if tokens > rate.limit:
            raise RateLimited(
                f"This request needs about {tokens} tokens, more than the {rate.limit} tokens "
                f"per minute that '{rate.scope}' may use: send a shorter prompt or a lower "
                "max_tokens.",
                headers={"retry-after": "60"},
            )
        return tokens

    # --- refusals --------------------------------------------------------------------

    def _refuse_known(
        self, caller: Caller, ask: Ask, budgets: tuple[BudgetLimit, ...], now: float
    ) -> None:
        """A scope refused a moment ago is refused again without asking the store (a
        budget only for a reservation at least as large as the one it refused)."""
        if not self._denied:
            return
        now_ms = int(now * 1000)
        names = [(r.key, 0) for r in ask.rates] + [(b.bucket, ask.amount) for b in ask.budgets]
        for index, (name, amount) in enumerate(names):
            denial = self._denied.get(name)
            if denial is None:
                continue
            until, refused_amount = denial
            if until <= now_ms:
                del self._denied[name]
            elif amount >= refused_amount:
                verdict = Verdict(allowed=False, refused=index, retry_after_ms=until - now_ms)
                self._refuse(caller, ask, budgets, verdict, now, remember=False)

    def _refuse(
        self,
        caller: Caller,
        ask: Ask,
        budgets: tuple[BudgetLimit, ...],
        verdict: Verdict,
        now: float,
        *,
        remember: bool = True,
    ) -> None:
        headers = self._headers(caller, ask, verdict, now)
        index = verdict.refused
        if index < len(ask.rates):
            rate, limit = ask.rates[index], caller.rates[index]
            if remember:
                self._denied[rate.key] = (int(now * 1000) + verdict.retry_after_ms, 0)
            headers["retry-after"] = retry_after_header(verdict.retry_after_ms / 1000)
            what = "requests" if limit.kind == "rpm" else "tokens"
            raise RateLimited(
                f"Rate limit reached for '{limit.scope}': {limit.limit} {what} per minute. "
                f"Retry after {headers['retry-after']} s.",
                headers=headers,
            )
        budget = budgets[index - len(ask.rates)]
        if remember:
            self._denied[ask.budgets[index - len(ask.rates)].bucket] = (
                int(now * 1000) + BUDGET_DENIAL_MS,
                ask.amount,
            )
        end = period_end(budget.period, now)
        headers["retry-after"] = str(max(1, math.ceil(end - now)))
        scope = "the gateway" if budget.scope == "all" else f"'{budget.scope}'"
        raise BudgetExceeded(
            f"The {budget.period} budget of {scope} (${budget.usd:g}) cannot cover this "
            f"request's worst case (${ask.amount / NANO:.6f}). It resets at the end of the "
            "UTC " + ("day." if budget.period == "daily" else "month."),
            headers=headers,
        )

    # --- headers ---------------------------------------------------------------------

    def _headers(self, caller: Caller, ask: Ask, verdict: Verdict, now: float) -> dict[str, str]:
        """OpenAI's `x-ratelimit-*` trios, for the tightest scope of each kind."""
        headers: dict[str, str] = {}
        for kind, suffix in _KINDS:
            tightest: tuple[int, int, int] | None = None  # remaining, limit, reset
            for i, limit in enumerate(caller.rates):
                if limit.kind != kind:
                    continue
                if verdict.allowed:
                    state = verdict.rates[i]
                    entry = (state.remaining, limit.limit, state.reset_ms)
                elif i == verdict.refused:
                    entry = (0, limit.limit, verdict.retry_after_ms)
                else:
                    entry = self._last_known(ask.rates[i].key, limit.limit, now)
                if tightest is None or entry[0] < tightest[0]:
                    tightest = entry
            if tightest is not None:
                remaining, limit_value, reset = tightest
                headers[f"x-ratelimit-limit-{suffix}"] = str(limit_value)
                headers[f"x-ratelimit-remaining-{suffix}"] = str(remaining)
                headers[f"x-ratelimit-reset-{suffix}"] = reset_text(reset)
        return headers

    def known_headers(self, caller: Caller) -> dict[str, str]:
        """The `x-ratelimit-*` headers for an answer to a limited caller refused before
        admission (a malformed body, say): its limits as last seen on this replica."""
        if not caller.rates:
            return {}
        now = self._clock()
        headers: dict[str, str] = {}
        for kind, suffix in (("rpm", "requests"), ("tpm", "tokens")):
            states = [
                self._last_known(f"{r.scope}:{r.kind}", r.limit, now)
                for r in caller.rates
                if r.kind == kind
            ]
            if states:
                remaining, limit, reset = min(states)
                headers[f"x-ratelimit-limit-{suffix}"] = str(limit)
                headers[f"x-ratelimit-remaining-{suffix}"] = str(remaining)
                headers[f"x-ratelimit-reset-{suffix}"] = reset_text(reset)
        return headers

    def _last_known(self, key: str, limit: int, now: float) -> tuple[int, int, int]:
        """A scope's state as last seen, refilled since at its steady rate."""
        last = self._last.get(key)
        if last is None:
            return limit, limit, 0
        remaining, reset_ms, at = last
        elapsed = int(now * 1000) - at
        refilled = min(limit, remaining + int(elapsed * limit // WINDOW_MS))
        return refilled, limit, max(0, reset_ms - elapsed)


def _admitted_headers(
    headers: dict[str, str],
    groups: tuple[tuple[tuple[str, str, str], tuple[tuple[int, int], ...]], ...],
    states: tuple[RateState, ...],
) -> None:
    """`Governance._headers` for an admitted request, from the caller's precomputed
    groups: per kind, the scope with the fewest remaining (the first on a tie)."""
    for (limit_name, remaining_name, reset_name), members in groups:
        index, limit = members[0]
        best = states[index]
        for index, other_limit in members[1:]:
            state = states[index]
            if state.remaining < best.remaining:
                best, limit = state, other_limit
        headers[limit_name] = str(limit)
        headers[remaining_name] = str(best.remaining)
        headers[reset_name] = reset_text(best.reset_ms)


def _tokens(prompt_tokens: int, output_tokens: int | None) -> int:
    return prompt_tokens + (output_tokens or 0)
