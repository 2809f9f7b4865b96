"""Settlements and ledger entries this replica owes the shared store, until it has them.

Finished requests are summed into one open batch (per budget bucket, per tokens-per-minute
key, per ledger field), so the outbox grows with the number of distinct buckets and
fields, not with the number of requests or the length of an outage. A flush seals the
open batch with the next number of this process's sequence and sends it; a batch stays
in the outbox, sealed, until Redis has applied it *and*, where the deployment has
replicas (Sentinel), a replica has acknowledged it (`WAIT`). A sealed batch is sent again
at every flush until then: `settle.lua` applies a batch only if its number is above the
last one applied for this process, so a batch Redis applied but whose reply was lost, or
that was applied twice before and after a failover, is counted once.

Bounded: at most `limit` entries wait (open and sealed together). What does not fit is
dropped, counted in `dropped` and logged: the budget then undercounts by that spend.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gateway.governance.ask import Settlement

log = logging.getLogger("switchboard.governance")

OUTBOX_LIMIT = 100_000  # entries (buckets, tpm keys, ledger fields, holds) kept at most
RESEND_LIMIT = 50  # sealed batches kept for a replica's acknowledgement (5 s of flushes)


@dataclass
class Batch:
    """What one flush writes: sums, ready for `settle.lua`."""

    seq: int = 0  # 0 while open; sealed batches count from 1, in the order they are sent
    holds: list[str] = field(default_factory=list)  # shared reservations to release
    spent: dict[str, int] = field(default_factory=dict)  # budget bucket → nano-USD
    tokens: dict[str, tuple[int, int]] = field(default_factory=dict)  # tpm key → (limit, Δ)
    ledger: dict[str, dict[str, int]] = field(default_factory=dict)  # day → field → amount
    used: dict[str, float] = field(default_factory=dict)  # key name → last use (epoch s)
    settlements: int = 0  # requests summed here

    def size(self) -> int:
        fields = sum(len(f) for f in self.ledger.values())
        return len(self.holds) + len(self.spent) + len(self.tokens) + fields + len(self.used)

    def __bool__(self) -> bool:
        return bool(self.holds or self.spent or self.tokens or self.ledger or self.used)


class SettlementOutbox:
    def __init__(self, *, limit: int = OUTBOX_LIMIT, resend_limit: int = RESEND_LIMIT) -> None:
        self.limit = limit
        self.resend_limit = resend_limit
        # this process's sequence: a new one per process, so a restarted replica never
        # collides with what its predecessor applied
        self.epoch = uuid.uuid4().hex
        self._next_seq = 1
        self._open = Batch()
        self._sealed: list[Batch] = []  # sent, not yet confirmed; oldest first
        self._size = 0  # entries in _open and _sealed
        self.dropped = 0  # settlements given up on: the outbox was full
        self.unconfirmed_dropped = 0  # batches applied but never confirmed by a replica

    def __bool__(self) -> bool:
        return bool(self._open) or bool(self._sealed)

    def __len__(self) -> int:
        """Entries waiting."""
        return self._size

    def add(
        self,
        settlements: Sequence[Settlement],
        ledger: Mapping[str, Mapping[str, int]] | None = None,
        used: Mapping[str, float] | None = None,
    ) -> None:
        batch = self._open
        before = batch.size()
        dropped = 0
        for settlement in settlements:
            new = (
                (1 if settlement.hold else 0)
                + sum(b not in batch.spent for b in settlement.buckets)
                + sum(t[0] not in batch.tokens for t in settlement.tokens)
            )
            if new and self._size + (batch.size() - before) + new > self.limit:
                dropped += 1
                continue
            batch.settlements += 1
            if settlement.hold:
                batch.holds.append(settlement.hold)
            for bucket in settlement.buckets:
                batch.spent[bucket] = batch.spent.get(bucket, 0) + settlement.actual
            for key, limit, difference in settlement.tokens:
                _, total = batch.tokens.get(key, (limit, 0))
                batch.tokens[key] = (limit, total + difference)
        for day, fields in (ledger or {}).items():
            kept = batch.ledger.setdefault(day, {})
            for name, amount in fields.items():
                if name not in kept and self._size + (batch.size() - before) >= self.limit:
                    continue  # counted with the settlements of the same records
                kept[name] = kept.get(name, 0) + amount
        for name, at in (used or {}).items():
            if name in batch.used or self._size + (batch.size() - before) < self.limit:
                batch.used[name] = max(at, batch.used.get(name, at))
        self._size += batch.size() - before
        if dropped:
            self.dropped += dropped
            log.warning(
                "governance outbox full (%d entries): %d settlements dropped, their spend "
                "will not reach the shared budgets",
                self._size,
                dropped,
            )

    def take(self) -> list[Batch]:
        """Every batch to send now, oldest first: the sealed ones again, and the open
        one sealed with the next sequence number."""
        if self._open:
            self._open.seq = self._next_seq
            self._next_seq += 1
            self._sealed.append(self._open)
            self._open = Batch()
        return list(self._sealed)

    def applied(self, batches: Sequence[Batch], *, confirmed: bool) -> None:
        """`batches` (from `take`) reached Redis. Confirmed (by a replica, or where there
        is none to ask): done. Else kept to send again, up to `resend_limit` batches."""
        sent = {b.seq for b in batches}
        if confirmed:
            self._sealed = [b for b in self._sealed if b.seq not in sent]
        elif len(self._sealed) > self.resend_limit:
            given_up = self._sealed[: len(self._sealed) - self.resend_limit]
            self._sealed = self._sealed[len(given_up) :]
            self.unconfirmed_dropped += len(given_up)
            log.warning(
                "no replica acknowledged %d governance batches: kept on the primary only, "
                "a failover now would lose them",
                len(given_up),
            )
        self._size = self._open.size() + sum(b.size() for b in self._sealed)
