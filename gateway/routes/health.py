"""Liveness and readiness."""

from __future__ import annotations

import msgspec
from litestar import Response, get
from litestar.datastructures import State

from gateway.errors import JSON
from gateway.services import Services
from gateway.serving.drain import DRAIN

# deployments routing would send a request to now (half open: a probe may go)
_SERVING = ("healthy", "half_open")


class Readiness(msgspec.Struct, kw_only=True, omit_defaults=True):
    # ready | degraded: both serve traffic, so both answer 200;
    # draining | unavailable: 503, send this replica nothing new
    status: str
    store: str  # memory | redis
    detail: str | None = None  # why degraded, draining or unavailable


@get("/healthz")
async def healthz() -> Response[bytes]:
    return Response(b'{"status":"ok"}', media_type=JSON)


@get("/readyz")
async def readyz(state: State) -> Response[bytes]:
    """Ready when the store is reachable, or in declared degraded mode (routing on this
    replica's own statistics, reconnecting in the background). Not ready while draining
    after SIGTERM, nor while no model has a deployment routing would use (every circuit
    open or in cooldown: the replica could only answer errors)."""
    services: Services = state.services
    status = services.store.status()
    governance = services.governance.store.status()  # limits and budgets: see governance.md
    degraded = status.degraded or governance.degraded
    body = Readiness(
        status="degraded" if degraded else "ready",
        store=status.backend,
        detail="; ".join(d for d in (status.detail, governance.detail) if d) or None,
    )
    if DRAIN.draining:
        body = Readiness(status="draining", store=status.backend, detail="shutting down")
    elif (reason := _nothing_to_route(services)) is not None:
        body = Readiness(status="unavailable", store=status.backend, detail=reason)
    code = 200 if body.status in ("ready", "degraded") else 503
    return Response(msgspec.json.encode(body), media_type=JSON, status_code=code)


def _nothing_to_route(services: Services) -> str | None:
    board = services.live_scoreboard()
    if not services.models.models:
        return "no model is configured"
    if any(row.health in _SERVING for row in board.data):
        return None
    states = sorted({f"{row.provider}: {row.health}" for row in board.data})
    return "no model has a healthy deployment (" + ", ".join(states) + ")"
