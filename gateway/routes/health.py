"""Liveness and readiness."""

from __future__ import annotations

from litestar import Response, get
from litestar.datastructures import State

from gateway.errors import JSON
from gateway.services import Services


@get("/healthz")
async def healthz() -> Response[bytes]:
    return Response(b'{"status":"ok"}', media_type=JSON)


@get("/readyz")
async def readyz(state: State) -> Response[bytes]:
    services: Services = state.services
    store = services.config.store.split("://", 1)[0]
    body = b'{"status":"ready","store":"' + store.encode() + b'"}'
    return Response(body, media_type=JSON)
