"""Every budget in force and how much of it is used: for `/metrics` and the status page.

Budgets are the keys' and teams' (`auth`, and keys created in the store) and the
gateway's own (`governance.budget_usd`). Their use is what settlement counted in the
governance store's buckets: spent (settled) and reserved (held by requests in flight).
Read when asked, with one store call; never on a request's path.
"""

from __future__ import annotations

import time
from typing import Literal

import msgspec

from gateway.auth import Authenticator, BudgetLimit
from gateway.governance.ask import NANO
from gateway.governance.config import GovernanceConfig
from gateway.governance.periods import PERIODS, Period, period_id
from gateway.governance.store import GovernanceStore

Scope = Literal["key", "team", "gateway"]
# the governance store's bucket names: `<scope>:<d|m>:<period id>` (see admission.py)
_LETTER: dict[Period, str] = {"daily": "d", "monthly": "m"}


class BudgetUse(msgspec.Struct, kw_only=True):
    scope: Scope
    name: str  # the key's or team's name; "" for the gateway's own
    period: Period
    limit_usd: float
    spent_usd: float
    reserved_usd: float

    @property
    def remaining_usd(self) -> float:
        return max(self.limit_usd - self.spent_usd - self.reserved_usd, 0.0)


def budgets_in_force(auth: Authenticator, governance: GovernanceConfig) -> list[BudgetLimit]:
    """Each budget once (a team's is in every one of its keys' callers)."""
    limits = {(b.scope, b.period): b for c in auth.callers() for b in c.budgets}
    if governance.budget_usd is not None:
        for period in PERIODS:
            usd = getattr(governance.budget_usd, period)
            if usd is not None:
                limits["all", period] = BudgetLimit("all", period, usd)
    return sorted(limits.values(), key=lambda b: (b.scope, b.period))


def _scope_and_name(scope: str) -> tuple[Scope, str]:
    if scope == "all":
        return "gateway", ""
    kind, _, name = scope.partition(":")
    return ("team" if kind == "team" else "key"), name


async def budget_uses(
    auth: Authenticator,
    governance: GovernanceConfig,
    store: GovernanceStore,
    now: float | None = None,
) -> list[BudgetUse]:
    """Raises the store's StoreUnavailable when it cannot be read."""
    now = time.time() if now is None else now
    limits = budgets_in_force(auth, governance)
    buckets = [f"{b.scope}:{_LETTER[b.period]}:{period_id(b.period, now)}" for b in limits]
    spend = await store.spend(buckets) if buckets else {}
    uses = []
    for limit, bucket in zip(limits, buckets, strict=True):
        spent, held = spend.get(bucket, (0, 0))
        scope, name = _scope_and_name(limit.scope)
        uses.append(
            BudgetUse(
                scope=scope,
                name=name,
                period=limit.period,
                limit_usd=limit.usd,
                spent_usd=spent / NANO,
                reserved_usd=held / NANO,
            )
        )
    return uses
