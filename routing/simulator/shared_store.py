"""Replicas sharing one store, in process: what Redis holds for them (the two hashes per
deployment of `routing/store/fields.py` and the prices), written with `fields.apply`, the
Python twin of `redis_record.lua` that the store parity test holds to the script. Each
replica keeps the real store's local buffer, flush and refresh cycle."""

from __future__ import annotations

from collections.abc import Callable

from routing.config import MetricsConfig
from routing.stats import PriceOverride, Snapshot
from routing.store.base import MetricsStore
from routing.store.fields import DeploymentDelta, apply, oldest_bucket


class SharedBackend:
    def __init__(self) -> None:
        self.windows: dict[str, dict[str, float]] = {}
        self.states: dict[str, dict[str, float]] = {}
        self.prices: dict[str, PriceOverride] = {}


class ReplicaStore(MetricsStore):
    backend = "simulated"

    def __init__(
        self,
        shared: SharedBackend,
        config: MetricsConfig,
        *,
        clock: Callable[[], float],
        replica: str,
    ) -> None:
        super().__init__(config, clock=clock, replica=replica)
        self._backend = shared

    async def _push(
        self, deltas: dict[str, DeploymentDelta], in_flight: dict[str, int], now: float
    ) -> None:
        keep_from = oldest_bucket(now, self.config)
        backend = self._backend
        for deployment, delta in deltas.items():
            window = backend.windows.setdefault(deployment, {})
            apply(window, backend.states.setdefault(deployment, {}), delta, keep_from)
        for deployment, count in in_flight.items():
            state = backend.states.setdefault(deployment, {})
            state[f"if:{self.replica}"] = float(count)
            state[f"ifat:{self.replica}"] = now

    async def _pull(self, now: float) -> Snapshot | None:
        # copies, as a read from Redis is: this replica writes its news onto what it read
        backend = self._backend
        windows = {d: dict(backend.windows.get(d, {})) for d in self._tracked}
        states = {d: dict(backend.states.get(d, {})) for d in self._tracked}
        return self._shared_snapshot(windows, states, backend.prices, now)

    async def _push_price(self, key: str, price: PriceOverride | None) -> None:
        if price is None:
            self._backend.prices.pop(key, None)
        else:
            self._backend.prices[key] = price
