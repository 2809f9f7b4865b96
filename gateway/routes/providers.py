"""GET /v1/providers: the live scoreboard, one row per model deployment."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import State

from gateway.errors import JSON
from gateway.services import Services


@get("/v1/providers")
async def list_providers(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    services: Services = state.services
    if services.admin.is_admin(request.headers):
        board = services.live_scoreboard()  # the admin key sees every deployment
    else:
        caller = services.auth.authenticate(request.headers)
        visible = {
            name: deployments
            for name, deployments in services.models.models.items()
            if caller.allows(name)
        }
        board = services.live_scoreboard(visible)
    return Response(msgspec.json.encode(board), media_type=JSON)
