"""POST /v1/responses: the request pipeline of every endpoint (see gateway/pipeline.py)
with the Responses body; planning, admission and dispatch are in `service.py`."""

from __future__ import annotations

from litestar import Request, post
from litestar.datastructures import State
from litestar.types import ASGIApp

from gateway.governance.input_limits import check_output_cap
from gateway.ingress.responses.decoding import decode_responses_body
from gateway.pipeline import begin, read_json

ENDPOINT = "responses"


@post("/v1/responses", status_code=200)
async def create_response(request: Request[object, object, State]) -> ASGIApp:
    request_id: str = request.scope["state"]["request_id"]  # set by the middleware
    services, account, caller = begin(request, ENDPOINT)
    decoded = decode_responses_body(await read_json(request, services))
    account.model = decoded.options.models[0]
    account.stream = decoded.request.stream
    limit = decoded.request.max_output_tokens
    for name in decoded.options.models:
        services.check_model_allowed(caller, name)
        check_output_cap(
            limit if isinstance(limit, int) else None,
            name,
            services.models.resolve(name).deployments,
            param="max_output_tokens",
        )
    return await services.responses.answer(services.router, decoded, caller, account, request_id)
