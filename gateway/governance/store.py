"""Where limits, reservations and spend live: this process (`memory://`) or Redis.

`GovernanceStore` is the memory store and the interface; `RedisGovernanceStore` runs the
same decisions as Lua scripts, one round trip each. Both are driven by the same tests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import msgspec

from gateway.governance.ask import (
    WINDOW_MS,
    Ask,
    RateState,
    Settlement,
    Verdict,
    interval_ms,
)


class GovernanceStatus(msgspec.Struct, kw_only=True):
    backend: str  # memory | redis
    degraded: bool  # the shared store is unreachable: this replica limits on its own
    detail: str | None = None


class _Hold(msgspec.Struct):
    expires_ms: int
    amount: int
    buckets: tuple[str, ...]


class GovernanceStore:
    """In process memory: exact within one process, which is all `memory://` serves."""

    backend = "memory"

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._tats: dict[str, float] = {}  # rate key → theoretical arrival time (ms)
        self._spent: dict[str, int] = {}  # budget bucket → settled nano-USD
        self._held: dict[str, int] = {}  # budget bucket → reserved, not yet settled
        self._holds: dict[str, _Hold] = {}

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # --- admission and settlement --------------------------------------------------

    async def admit(self, ask: Ask) -> Verdict:
        return self.admit_now(ask, self.now_ms())

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        now = self.now_ms()
        for settlement in settlements:
            self.settle_now(settlement, now)

    def admit_now(self, ask: Ask, now: int) -> Verdict:
        """The decision `admit.lua` makes, made here: nothing is taken unless all fits."""
        self._expire_holds(now)
        tats = []
        for i, rate in enumerate(ask.rates):
            tat = max(self._tats.get(rate.key, now), now) + rate.cost * interval_ms(rate.limit)
            if tat - now > WINDOW_MS:
                return Verdict(
                    allowed=False, refused=i, retry_after_ms=math.ceil(tat - now - WINDOW_MS)
                )
            tats.append(tat)
        for i, budget in enumerate(ask.budgets):
            used = self._spent.get(budget.bucket, 0) + self._held.get(budget.bucket, 0)
            if used + ask.amount > budget.limit:
                return Verdict(allowed=False, refused=len(ask.rates) + i)
        states = []
        for rate, tat in zip(ask.rates, tats, strict=True):
            self._tats[rate.key] = tat
            states.append(_state(rate.limit, tat, now))
        if ask.budgets:
            buckets = tuple(b.bucket for b in ask.budgets)
            for bucket in buckets:
                self._held[bucket] = self._held.get(bucket, 0) + ask.amount
            self._holds[ask.hold] = _Hold(now + ask.hold_ms, ask.amount, buckets)
        return Verdict(allowed=True, rates=tuple(states))

    def settle_now(self, settlement: Settlement, now: int) -> None:
        hold = self._holds.pop(settlement.hold, None)
        if hold is not None:  # else it expired already and gave its amount back
            self._release(hold)
        for bucket in settlement.buckets:
            self._spent[bucket] = self._spent.get(bucket, 0) + settlement.actual
        for key, limit, tokens in settlement.tokens:
            tat = self._tats.get(key)
            if tat is not None:
                self._tats[key] = max(tat + tokens * interval_ms(limit), float(now))

    def _expire_holds(self, now: int) -> None:
        expired = [hold_id for hold_id, hold in self._holds.items() if hold.expires_ms <= now]
        for hold_id in expired:
            self._release(self._holds.pop(hold_id))

    def _release(self, hold: _Hold) -> None:
        for bucket in hold.buckets:
            self._held[bucket] = self._held.get(bucket, 0) - hold.amount

    # --- reading spend -------------------------------------------------------------

    async def spend(self, buckets: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Settled and held nano-USD of each bucket."""
        self._expire_holds(self.now_ms())
        return {b: (self._spent.get(b, 0), self._held.get(b, 0)) for b in buckets}

    # --- lifecycle -----------------------------------------------------------------

    def status(self) -> GovernanceStatus:
        return GovernanceStatus(backend=self.backend, degraded=False)

    async def start(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


def _state(limit: int, tat: float, now: int) -> RateState:
    interval = interval_ms(limit)
    remaining = int((WINDOW_MS - (tat - now)) // interval)
    return RateState(remaining=max(0, min(limit, remaining)), reset_ms=math.ceil(tat - now))
