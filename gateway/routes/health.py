"""Liveness and readiness."""

from __future__ import annotations

import msgspec
from litestar import Response, get
from litestar.datastructures import State

from gateway.errors import JSON
from gateway.services import Services


class Readiness(msgspec.Struct, kw_only=True, omit_defaults=True):
    status: str  # ready | degraded: both serve traffic, so both answer 200
    store: str  # memory | redis
    detail: str | None = None  # why degraded


@get("/healthz")
async def healthz() -> Response[bytes]:
    return Response(b'{"status":"ok"}', media_type=JSON)


@get("/readyz")
async def readyz(state: State) -> Response[bytes]:
    """Ready when the store is reachable, or in declared degraded mode: routing on this
    replica's own statistics, reconnecting in the background."""
    services: Services = state.services
    status = services.store.status()
    governance = services.governance.store.status()  # limits and budgets: see governance.md
    degraded = status.degraded or governance.degraded
    body = Readiness(
        status="degraded" if degraded else "ready",
        store=status.backend,
        detail="; ".join(d for d in (status.detail, governance.detail) if d) or None,
    )
    return Response(msgspec.json.encode(body), media_type=JSON)
