"""Deltas a shared backend has not acknowledged yet, kept for the next flush.

While Redis is down every flush adds to the outbox; the next flush that reaches Redis
sends it all. Deltas are merged per deployment (one script call each, however long the
outage), in slices of one bucket each, so the outbox is bounded: it holds about one
window of flushes, and older slices are dropped (their outcomes counted in `dropped`),
since their counters would have left the window by the time they arrive anyway.
"""

from __future__ import annotations

import logging
from collections import deque

from routing.config import MetricsConfig
from routing.store.fields import DeploymentDelta

log = logging.getLogger("switchboard.store")

Entries = list[tuple[str, DeploymentDelta]]  # in the order they must be applied


def merge(older: DeploymentDelta, newer: DeploymentDelta) -> DeploymentDelta | None:
    """One delta that `apply()` writes exactly as it writes `older` then `newer`; None
    when there is none: a circuit closed then opened again (`apply` opens with a max,
    which would not forget an older, later `open` that the close cleared)."""
    if older.open_until == 0 and newer.open_until:
        return None
    counters = dict(older.counters)
    for field, amount in newer.counters.items():
        counters[field] = counters.get(field, 0.0) + amount
    averages = dict(older.averages)
    for name, late in newer.averages.items():
        early = averages.get(name)
        averages[name] = late if early is None else early.merged(late)
    if newer.reset_failures:
        reset, failures = True, newer.failures
    else:
        reset, failures = older.reset_failures, older.failures + newer.failures
    if newer.open_until is None:
        open_until = older.open_until
    elif newer.open_until == 0 or older.open_until is None:
        open_until = newer.open_until
    else:
        open_until = max(older.open_until, newer.open_until)
    return DeploymentDelta(
        counters=counters,
        averages=averages,
        seen=max(older.seen, newer.seen),
        reset_failures=reset,
        failures=failures,
        cooldown_until=max(older.cooldown_until, newer.cooldown_until),
        open_until=open_until,
    )


def _append(chain: list[DeploymentDelta], delta: DeploymentDelta) -> None:
    merged = merge(chain[-1], delta) if chain else None
    if merged is None:
        chain.append(delta)
    else:
        chain[-1] = merged


def _outcomes(delta: DeploymentDelta) -> int:
    return int(sum(v for field, v in delta.counters.items() if field.endswith(":n")))


class Outbox:
    def __init__(self, config: MetricsConfig) -> None:
        self._bucket = config.bucket
        # slices, oldest first: (bucket, deployment → deltas to apply in order)
        self._slices: deque[tuple[int, dict[str, list[DeploymentDelta]]]] = deque()
        self._max_slices = int(config.window // config.bucket) + 1
        self.dropped = 0  # outcomes given up on

    def __bool__(self) -> bool:
        return bool(self._slices)

    def add(self, deltas: dict[str, DeploymentDelta], now: float) -> None:
        if not deltas:
            return
        bucket = int(now // self._bucket)
        if not self._slices or self._slices[-1][0] != bucket:
            self._slices.append((bucket, {}))
        chains = self._slices[-1][1]
        for deployment, delta in deltas.items():
            _append(chains.setdefault(deployment, []), delta)
        while len(self._slices) > self._max_slices:
            _, chains = self._slices.popleft()
            lost = sum(_outcomes(d) for chain in chains.values() for d in chain)
            self.dropped += lost
            log.warning("metrics store outbox full: %d outcomes not shared", lost)

    def entries(self) -> Entries:
        """Everything waiting, merged across slices, in the order to apply it."""
        chains: dict[str, list[DeploymentDelta]] = {}
        for _, sliced in self._slices:
            for deployment, chain in sliced.items():
                merged = chains.setdefault(deployment, [])
                for delta in chain:
                    _append(merged, delta)
        return [(deployment, delta) for deployment, chain in chains.items() for delta in chain]

    def clear(self) -> None:
        self._slices.clear()

    def keep(self, entries: Entries, now: float) -> None:
        """Replace the contents with `entries` (those a partly failed write did not
        deliver), as one slice dated from the oldest slice they came from."""
        bucket = self._slices[0][0] if self._slices else int(now // self._bucket)
        self._slices.clear()
        if entries:
            chains: dict[str, list[DeploymentDelta]] = {}
            for deployment, delta in entries:
                chains.setdefault(deployment, []).append(delta)
            self._slices.append((bucket, chains))
