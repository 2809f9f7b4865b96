"""Replicas sharing one store, in process: what Redis holds for them (the two hashes per
deployment of `routing/store/fields.py` and the prices), written with `fields.apply`, the
Python twin of `redis_record.lua` that the store parity test holds to the script. Each
replica keeps the real store's local buffer, flush and refresh cycle."""

from __future__ import annotations

from collections.abc import Callable

from routing.config import MetricsConfig
from routing.stats import PriceOverride, Snapshot
from routing.store.base import MetricsStore
from routing.store.fields import DeploymentDelta, apply, oldest_bucket, stats_from


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
        self._shared = shared

    async def _push(
        self, deltas: dict[str, DeploymentDelta], in_flight: dict[str, int], now: float
    ) -> None:
        keep_from = oldest_bucket(now, self.config)
        shared = self._shared
        for deployment, delta in deltas.items():
            window = shared.windows.setdefault(deployment, {})
            apply(window, shared.states.setdefault(deployment, {}), delta, keep_from)
        for deployment, count in in_flight.items():
            state = shared.states.setdefault(deployment, {})
            state[f"if:{self.replica}"] = float(count)
            state[f"ifat:{self.replica}"] = now

    async def _pull(self, now: float) -> Snapshot | None:
        shared = self._shared
        stats = {
            deployment: stats_from(
                shared.windows.get(deployment, {}),
                shared.states.get(deployment, {}),
                now,
                self.config,
            )
            for deployment in self._tracked
        }
        return Snapshot(taken_at=now, stats=stats, prices=dict(shared.prices))

    async def _push_price(self, key: str, price: PriceOverride | None) -> None:
        if price is None:
            self._shared.prices.pop(key, None)
        else:
            self._shared.prices[key] = price
