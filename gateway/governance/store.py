"""Where limits, reservations and spend live: this process (`memory://`) or Redis.

`GovernanceStore` is the memory store and the interface; `RedisGovernanceStore` runs the
same decisions as Lua scripts, one round trip each. Both are driven by the same tests.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Mapping, Sequence

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
    dropped: int = 0  # settlements given up on since start: the outbox overflowed


class _Hold(msgspec.Struct, gc=False):  # strings and numbers only: never in a cycle
    expires_ms: int
    amount: int
    buckets: tuple[str, ...]


class GovernanceStore:
    """In process memory: exact within one process, which is all `memory://` serves."""

    backend = "memory"

    def __init__(self, *, clock: Callable[[], float] = time.time, ledger_days: int = 400) -> None:
        self.clock = clock
        self.ledger_days = ledger_days
        self._tats: dict[str, float] = {}  # rate key → theoretical arrival time (ms)
        self._spent: dict[str, int] = {}  # budget bucket → settled nano-USD
        self._held: dict[str, int] = {}  # budget bucket → reserved, not yet settled
        self._holds: dict[str, _Hold] = {}
        self._expiries: list[tuple[int, str]] = []  # heap of (expiry ms, hold id)
        self._keys: dict[str, bytes] = {}  # name → StoredKey as JSON
        self._last_used: dict[str, float] = {}
        self._ledger: dict[str, dict[str, int]] = {}  # UTC day → field → amount
        self._idempotency: dict[str, tuple[bytes, int]] = {}  # slot → (record, expiry ms)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # --- admission and settlement --------------------------------------------------

    async def admit(self, ask: Ask) -> Verdict:
        return self.admit_now(ask, self.now_ms())

    async def settle(
        self,
        settlements: Sequence[Settlement],
        ledger: Mapping[str, Mapping[str, int]] | None = None,
        last_used: Mapping[str, float] | None = None,
    ) -> None:
        """A delivery's worth of finished requests: settlements, what they add to the
        ledger (day → field → amount) and when each key was last used."""
        now = self.now_ms()
        for settlement in settlements:
            self.settle_now(settlement, now)
        if ledger:
            self._add_ledger(ledger)
        if last_used:
            self._last_used.update(last_used)

    def _add_ledger(self, ledger: Mapping[str, Mapping[str, int]]) -> None:
        for day, fields in ledger.items():
            kept = self._ledger.setdefault(day, {})
            for field, amount in fields.items():
                kept[field] = kept.get(field, 0) + amount
        if len(self._ledger) > self.ledger_days:  # days are ISO dates: they sort by age
            for day in sorted(self._ledger)[: len(self._ledger) - self.ledger_days]:
                del self._ledger[day]

    async def ledger(self, days: Sequence[str]) -> dict[str, dict[str, int]]:
        return {day: dict(self._ledger[day]) for day in days if day in self._ledger}

    # --- idempotency ---------------------------------------------------------------

    async def idempotency_claim(self, slot: str, started: bytes, ttl_ms: int) -> bytes | None:
        """Claim a slot for a new request: None if claimed now, else what it holds."""
        now = self.now_ms()
        held = self._idempotency.get(slot)
        if held is not None and held[1] > now:
            return held[0]
        if len(self._idempotency) > 10_000:  # expired entries go when the map grows
            self._idempotency = {k: v for k, v in self._idempotency.items() if v[1] > now}
        self._idempotency[slot] = (started, now + ttl_ms)
        return None

    async def idempotency_put(self, slot: str, record: bytes, ttl_ms: int) -> None:
        self._idempotency[slot] = (record, self.now_ms() + ttl_ms)

    async def idempotency_delete(self, slot: str) -> None:
        self._idempotency.pop(slot, None)

    # --- keys kept in the store ----------------------------------------------------

    async def stored_keys(self) -> dict[str, bytes]:
        return dict(self._keys)

    async def put_key(self, name: str, data: bytes, *, create: bool) -> bool:
        """Write a key; with `create`, only if no key has that name (False if one has)."""
        if create and name in self._keys:
            return False
        self._keys[name] = data
        return True

    async def delete_key(self, name: str) -> bool:
        return self._keys.pop(name, None) is not None

    async def last_used(self) -> dict[str, float]:
        return dict(self._last_used)

    def admit_now(self, ask: Ask, now: int) -> Verdict:
        """The decision `admit.lua` makes, made here: nothing is taken unless all fits."""
        self._expire_holds(now)
        # on every request's path: the arithmetic of `interval_ms` and `_state` inlined
        tats = self._tats
        new_tats = []
        for i, rate in enumerate(ask.rates):
            tat = tats.get(rate.key, now)
            if tat < now:
                tat = now
            tat += rate.cost * (WINDOW_MS / rate.limit)
            if tat - now > WINDOW_MS:
                return Verdict(
                    allowed=False, refused=i, retry_after_ms=math.ceil(tat - now - WINDOW_MS)
                )
            new_tats.append(tat)
        if ask.budgets:
            spent, held, amount = self._spent, self._held, ask.amount
            for i, budget in enumerate(ask.budgets):
                bucket = budget.bucket
                if spent.get(bucket, 0) + held.get(bucket, 0) + amount > budget.limit:
                    return Verdict(allowed=False, refused=len(ask.rates) + i)
        states = []
        for rate, tat in zip(ask.rates, new_tats, strict=True):
            tats[rate.key] = tat
            limit = rate.limit
            remaining = int((WINDOW_MS - (tat - now)) // (WINDOW_MS / limit))
            states.append(
                RateState(
                    0 if remaining < 0 else limit if remaining > limit else remaining,
                    math.ceil(tat - now),
                )
            )
        if ask.budgets:
            buckets = tuple(b.bucket for b in ask.budgets)
            for bucket in buckets:
                held[bucket] = held.get(bucket, 0) + amount
            self._holds[ask.hold] = _Hold(now + ask.hold_ms, amount, buckets)
            heapq.heappush(self._expiries, (now + ask.hold_ms, ask.hold))
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
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            _, hold_id = heapq.heappop(expiries)
            hold = self._holds.get(hold_id)
            if hold is not None and hold.expires_ms <= now:  # else settled already
                self._release(self._holds.pop(hold_id))
        if len(expiries) > 2 * len(self._holds) + 1024:  # settled holds leave stale entries
            self._expiries = [(e, h) for e, h in expiries if h in self._holds]
            heapq.heapify(self._expiries)

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

    @property
    def dropped(self) -> int:
        """Settlements never written to the shared store: its outbox overflowed."""
        return 0

    async def start(self) -> None:
        pass

    async def aclose(self) -> None:
        pass
