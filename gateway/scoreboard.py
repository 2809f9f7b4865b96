"""The live view of every deployment: prices in force, statistics from the store's
snapshot, and whether routing would send it a request now. Read by `/v1/providers` and
`/v1/models`; built from memory, no store I/O."""

from __future__ import annotations

from typing import Literal

import msgspec

from providers.capabilities import Capabilities
from routing.deployments import Deployment
from routing.health import HealthBoard
from routing.plan import live_prices
from routing.stats import DeploymentStats, Snapshot, deployment_id, price_key
from routing.store.base import StoreStatus

Health = Literal["healthy", "rate_limited", "circuit_open", "half_open"]


class DeploymentStatus(msgspec.Struct, kw_only=True):
    model: str  # the canonical model
    provider: str
    provider_model_id: str
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float
    price_source: Literal["config", "store"]  # store: overridden live
    health: Health
    retry_at: float | None  # epoch seconds when an unhealthy deployment is tried again
    stats: DeploymentStats
    capabilities: Capabilities


class Scoreboard(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[DeploymentStatus]
    store: StoreStatus
    snapshot_age_ms: float


def _health(
    board: HealthBoard, key: str, stats: DeploymentStats, snapshot: Snapshot, now: float
) -> tuple[Health, float | None]:
    availability = board.availability(key, stats, snapshot.taken_at, now)
    if availability.state == "open":
        return "circuit_open", availability.retry_at
    if availability.state == "half_open":
        return "half_open", None
    if not availability.usable:
        return "rate_limited", availability.retry_at
    return "healthy", None


def deployment_status(
    model: str, deployment: Deployment, snapshot: Snapshot, board: HealthBoard, now: float
) -> DeploymentStatus:
    live = live_prices(model, deployment, snapshot)
    key = deployment_id(deployment.provider, deployment.model)
    stats = snapshot.of(key)
    health, retry_at = _health(board, key, stats, snapshot, now)
    return DeploymentStatus(
        model=model,
        provider=deployment.provider,
        provider_model_id=deployment.model,
        input_per_mtok=live.prices.input_per_mtok,
        output_per_mtok=live.prices.output_per_mtok,
        cached_input_per_mtok=live.prices.cached_input_per_mtok,
        price_source="store"
        if price_key(model, deployment.provider) in snapshot.prices
        else "config",
        health=health,
        retry_at=retry_at,
        stats=stats,
        capabilities=deployment.capabilities,
    )


def scoreboard(
    models: dict[str, list[Deployment]],
    snapshot: Snapshot,
    board: HealthBoard,
    store: StoreStatus,
    now: float,
) -> Scoreboard:
    return Scoreboard(
        data=[
            deployment_status(model, deployment, snapshot, board, now)
            for model, deployments in models.items()
            for deployment in deployments
        ],
        store=store,
        snapshot_age_ms=round(max(0.0, now - snapshot.taken_at) * 1000, 1),
    )
