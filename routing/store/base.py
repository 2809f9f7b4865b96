"""The metrics store: outcomes in, snapshots out, never on a request's path.

`record()` only appends to a local buffer. A background task folds the buffer into the
local statistics every `metrics.flush` seconds, writes it to the shared backend (if
any), and every `metrics.refresh` seconds reads a fresh `Snapshot` back. Routing reads
`snapshot()`, a plain attribute. A backend that fails leaves the store *degraded*:
routing goes on with this replica's own statistics, and the loop keeps trying.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable

import msgspec

from routing.config import MetricsConfig
from routing.stats import Outcome, PriceOverride, Snapshot, price_key
from routing.store.fields import (
    Accumulator,
    DeploymentDelta,
    apply,
    in_flight_elsewhere,
    oldest_bucket,
    stats_from,
)

log = logging.getLogger("switchboard.store")


class StoreStatus(msgspec.Struct, kw_only=True):
    backend: str  # memory | redis
    degraded: bool  # the shared backend is unreachable: local statistics only
    detail: str | None = None  # why, when degraded
    last_sync: float | None = None  # epoch seconds of the last good read from the backend


def replica_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class MetricsStore:
    """The memory store, and the base of shared ones (which override `_push`/`_pull`)."""

    backend = "memory"

    def __init__(
        self,
        config: MetricsConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        replica: str | None = None,
    ) -> None:
        self.config = config or MetricsConfig()
        self.clock = clock
        self.replica = replica or replica_name()
        self._accumulator = Accumulator(self.config)
        self._recorded: list[Outcome] = []  # folded into the accumulator off the request path
        self._windows: dict[str, dict[str, float]] = {}
        self._states: dict[str, dict[str, float]] = {}
        self._in_flight: dict[str, int] = {}
        self._starts: dict[str, int] = {}  # tries begun since the last flush (`rpm`)
        self._tracked: set[str] = set()
        self._prices: dict[str, PriceOverride] = {}
        self._snapshot = Snapshot()
        # from the last read of the shared backend: its hashes (this replica's later news
        # is written onto them until the next read) and other replicas' in-flight counts
        self._shared: tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]] | None = None
        self._elsewhere: dict[str, int] = {}
        self._degraded: str | None = None
        self._last_sync: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_pull = 0.0

    # --- the request path: no I/O, no awaiting ------------------------------------

    def record(self, outcome: Outcome) -> None:
        self._recorded.append(outcome)

    def started(self, deployment: str) -> None:
        self._in_flight[deployment] = self._in_flight.get(deployment, 0) + 1
        self._starts[deployment] = self._starts.get(deployment, 0) + 1

    def finished(self, deployment: str) -> None:
        self._in_flight[deployment] = max(0, self._in_flight.get(deployment, 0) - 1)

    def snapshot(self) -> Snapshot:
        return self._snapshot

    def local_in_flight(self, deployment: str) -> int:
        """Requests on a deployment now from this replica alone."""
        return self._in_flight.get(deployment, 0)

    def unflushed_starts(self, deployment: str) -> int:
        """Tries this replica began on a deployment that its snapshot does not count
        yet (they are in it from the next flush on)."""
        return self._starts.get(deployment, 0)

    def in_flight(self, deployment: str) -> int:
        """Requests on a deployment now: this replica's, counted as they start and end,
        and the others' as of the last read of the shared backend."""
        return self._in_flight.get(deployment, 0) + self._elsewhere.get(deployment, 0)

    # --- lifecycle -----------------------------------------------------------------

    def track(self, deployments: Iterable[str]) -> None:
        """The deployments whose statistics the snapshot reads."""
        self._tracked.update(deployments)

    async def start(self) -> None:
        await self.sync()
        self._task = asyncio.create_task(self._run(), name=f"{self.backend}-store")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self._flush()  # what is still buffered is not lost at shutdown
        await self._close_backend()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.config.flush)
            try:
                await self._flush()
                if self.clock() - self._last_pull >= self.config.refresh:
                    await self._refresh()
            except Exception:  # the loop must outlive any one failure
                log.exception("metrics store cycle failed")

    async def sync(self) -> None:
        """Write what is buffered and read a new snapshot now (tests, CLI, shutdown)."""
        await self._flush()
        await self._refresh()

    def status(self) -> StoreStatus:
        return StoreStatus(
            backend=self.backend,
            degraded=self._degraded is not None,
            detail=self._degraded,
            last_sync=self._last_sync,
        )

    # --- prices --------------------------------------------------------------------

    async def set_price(self, model: str, provider: str, price: PriceOverride | None) -> None:
        """Override (or, with None, clear) a deployment's price for every replica."""
        key = price_key(model, provider)
        await self._push_price(key, price)  # first: a failed write changes nothing here either
        if price is None:
            self._prices.pop(key, None)
        else:
            self._prices[key] = price
        self._snapshot = msgspec.structs.replace(self._snapshot, prices=dict(self._prices))

    # --- the cycle -----------------------------------------------------------------

    async def _flush(self) -> None:
        now = self.clock()
        recorded, self._recorded = self._recorded, []
        starts, self._starts = self._starts, {}
        for outcome in recorded:
            self._accumulator.add(outcome)
        for deployment, tries in starts.items():
            self._accumulator.started(deployment, tries, now)
        deltas = self._accumulator.drain()
        keep_from = oldest_bucket(now, self.config)
        for deployment, delta in deltas.items():
            self._tracked.add(deployment)
            window = self._windows.setdefault(deployment, {})
            state = self._states.setdefault(deployment, {})
            apply(window, state, delta, keep_from)
        await self._push(deltas, dict(self._in_flight), now)
        if deltas:
            self._overlay(deltas, keep_from, now)

    def _overlay(self, deltas: dict[str, DeploymentDelta], keep_from: int, now: float) -> None:
        """This replica's news goes into the snapshot at once, not at the next refresh:
        written onto the shared hashes last read (the next read has it from the backend
        itself), or, with no shared backend or none reachable, from the local ones."""
        shared = self._shared if self._degraded is None else None
        stats = dict(self._snapshot.stats)
        for deployment, delta in deltas.items():
            if shared is None:
                window, state = self._windows[deployment], self._local_state(deployment, now)
            else:
                window = shared[0].setdefault(deployment, {})
                state = shared[1].setdefault(deployment, {})
                apply(window, state, delta, keep_from)
            stats[deployment] = stats_from(window, state, now, self.config)
        self._snapshot = msgspec.structs.replace(self._snapshot, taken_at=now, stats=stats)

    def _local_state(self, deployment: str, now: float) -> dict[str, float]:
        state = dict(self._states.get(deployment, {}))
        state[f"if:{self.replica}"] = float(self._in_flight.get(deployment, 0))
        state[f"ifat:{self.replica}"] = now
        return state

    async def _refresh(self) -> None:
        now = self.clock()
        self._last_pull = now
        shared = await self._pull(now)
        if shared is None:
            self._shared, self._elsewhere = None, {}
            self._snapshot = self._local_snapshot(now)
            return
        self._snapshot = shared

    def _local_snapshot(self, now: float) -> Snapshot:
        stats = {
            deployment: stats_from(
                self._windows.get(deployment, {}),
                self._local_state(deployment, now),
                now,
                self.config,
            )
            for deployment in self._tracked
        }
        return Snapshot(taken_at=now, stats=stats, prices=dict(self._prices))

    def _shared_snapshot(
        self,
        windows: dict[str, dict[str, float]],
        states: dict[str, dict[str, float]],
        prices: dict[str, PriceOverride],
        now: float,
    ) -> Snapshot:
        """The snapshot of what a shared backend holds (each tracked deployment's two
        hashes, read at `now`); the hashes are kept for `_overlay`."""
        stats = {
            deployment: stats_from(
                windows.setdefault(deployment, {}),
                states.setdefault(deployment, {}),
                now,
                self.config,
            )
            for deployment in self._tracked
        }
        self._shared = (windows, states)
        self._elsewhere = {
            deployment: in_flight_elsewhere(state, self.replica, now)
            for deployment, state in states.items()
        }
        return Snapshot(taken_at=now, stats=stats, prices=dict(prices))

    def _set_degraded(self, reason: str | None) -> None:
        if reason is not None and self._degraded is None:
            log.warning("metrics store degraded, routing on local statistics: %s", reason)
        elif reason is None and self._degraded is not None:
            log.warning("metrics store reachable again")
        self._degraded = reason

    # --- what a shared backend overrides -------------------------------------------

    async def _push(
        self, deltas: dict[str, DeploymentDelta], in_flight: dict[str, int], now: float
    ) -> None:
        """Write this flush's deltas and this replica's in-flight counts."""

    async def _pull(self, now: float) -> Snapshot | None:
        """Read the shared snapshot; None: use the local one (memory, or degraded)."""
        return None

    async def _push_price(self, key: str, price: PriceOverride | None) -> None:
        """Write a price override for the other replicas."""

    async def _close_backend(self) -> None:
        pass
