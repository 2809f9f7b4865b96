"""The last finished requests and the traffic per deployment over the last minutes, kept
in this process for the status page. An accounts sink: it is fed in the background
batches, never on a request's path, and both are bounded (a ring of records, and
counters per time slot for a fixed span)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

import msgspec

from gateway.accounting import RequestRecord

RECENT_LIMIT = 500  # records kept for `GET /v1/requests`
SLOT_SECONDS = 5  # the traffic chart's resolution
SLOTS = 72  # ... over six minutes


class DeploymentTraffic(msgspec.Struct, kw_only=True):
    model: str  # the canonical model
    provider: str
    served: list[int]  # requests it served, per slot, oldest first


class Traffic(msgspec.Struct, kw_only=True):
    object: str = "traffic"
    slot_seconds: int
    start: float  # epoch seconds where the first slot begins
    deployments: list[DeploymentTraffic]
    failed: list[int]  # requests no deployment answered (refused, or every try failed)


class RecentRequests:
    name = "recent"

    def __init__(
        self,
        *,
        limit: int = RECENT_LIMIT,
        slot_seconds: int = SLOT_SECONDS,
        slots: int = SLOTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=limit)
        self._slot_seconds = slot_seconds
        self._slots = slots
        self._clock = clock
        # slot number (epoch // slot_seconds) → (model, provider) or None (failed) → count
        self._counts: dict[int, dict[tuple[str, str] | None, int]] = {}

    async def deliver(self, records: Sequence[RequestRecord]) -> None:
        oldest = self._slot(self._clock()) - self._slots + 1
        counts = self._counts
        for record in records:
            self._records.append(record)  # as it is: the page's views leave out admission
            slot = self._slot(record.started_at)
            if slot < oldest:
                continue
            metadata = record.routing_metadata
            # a deployment served it (a stream cut short or left by its client too)
            served = (metadata.model_canonical, metadata.provider) if metadata else None
            slot_counts = counts.setdefault(slot, {})
            slot_counts[served] = slot_counts.get(served, 0) + 1
        for slot in [s for s in counts if s < oldest]:
            del counts[slot]

    def latest(self, limit: int) -> list[RequestRecord]:
        """The last `limit` requests, the newest first."""
        records = self._records
        return [records[-i] for i in range(1, min(limit, len(records)) + 1)]

    def traffic(self) -> Traffic:
        first = self._slot(self._clock()) - self._slots + 1
        slots = range(first, first + self._slots)
        names = sorted({name for s in slots for name in self._counts.get(s, {}) if name})
        return Traffic(
            slot_seconds=self._slot_seconds,
            start=float(first * self._slot_seconds),
            deployments=[
                DeploymentTraffic(
                    model=model,
                    provider=provider,
                    served=[self._counts.get(s, {}).get((model, provider), 0) for s in slots],
                )
                for model, provider in names
            ],
            failed=[self._counts.get(s, {}).get(None, 0) for s in slots],
        )

    def _slot(self, epoch: float) -> int:
        return int(epoch // self._slot_seconds)
