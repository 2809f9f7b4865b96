"""POST /v1/chat/completions"""

from __future__ import annotations

from litestar import Request, Response, post
from litestar.datastructures import State
from litestar.response import Stream

from gateway.answers import sse_events, success_headers, with_metadata
from gateway.chat_decoding import decode_chat_body
from gateway.errors import JSON
from gateway.services import Services


@post("/v1/chat/completions", status_code=200)
async def chat_completions(
    request: Request[object, object, State], state: State
) -> Response[bytes] | Stream:
    request_id: str = request.scope["state"]["request_id"]  # set by the middleware
    services: Services = state.services
    caller = services.auth.authenticate(request.headers)
    chat, options = decode_chat_body(await request.body())
    for name in options.models:
        services.check_model_allowed(caller, name)

    if chat.stream:
        stream = await services.router.stream(chat, options, request_id)
        headers = {
            "x-switchboard-provider": stream.choice.deployment.provider,
            "x-switchboard-model": stream.choice.deployment.model,
            "cache-control": "no-cache",
            "x-accel-buffering": "no",  # nginx in front must not buffer the stream
        }
        return Stream(sse_events(stream), media_type="text/event-stream", headers=headers)

    completed = await services.router.complete(chat, options, request_id)
    return Response(
        with_metadata(completed.response.body, completed.metadata),
        media_type=JSON,
        headers=success_headers(completed.metadata, with_cost=True),
    )
