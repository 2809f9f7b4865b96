"""POST /v1/responses"""

from __future__ import annotations

from litestar import Request, post
from litestar.datastructures import State
from litestar.types import ASGIApp

from gateway.ingress.responses.decoding import decode_responses_body
from gateway.services import Services


@post("/v1/responses", status_code=200)
async def create_response(request: Request[object, object, State]) -> ASGIApp:
    request_id: str = request.scope["state"]["request_id"]  # set by the middleware
    services: Services = request.app.state.services
    caller = services.auth.authenticate(request.headers)
    decoded = decode_responses_body(await request.body())
    for name in decoded.options.models:
        services.check_model_allowed(caller, name)
    return await services.responses.answer(decoded, caller, request_id)
