"""POST /v1/chat/completions"""

from __future__ import annotations

from litestar import Request, post
from litestar.datastructures import State
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import ASGIApp

from gateway.answers import sse_events, success_headers, with_metadata
from gateway.chat_decoding import decode_chat_body
from gateway.raw_response import JSONBytes
from gateway.services import Services


@post("/v1/chat/completions", status_code=200)
async def chat_completions(request: Request[object, object, State]) -> ASGIApp:
    request_id: str = request.scope["state"]["request_id"]  # set by the middleware
    # read from the app rather than injected: a `state` parameter costs a State copy and
    # a signature-model pass on every request
    services: Services = request.app.state.services
    caller = services.auth.authenticate(request.headers)
    chat, options = decode_chat_body(await request.body())
    for name in options.models:
        services.check_model_allowed(caller, name)

    if chat.stream:
        stream = await services.router.stream(chat, options, request_id)
        headers = {
            "x-switchboard-provider": stream.candidate.deployment.provider,
            "x-switchboard-model": stream.candidate.deployment.model,
            "cache-control": "no-cache",
            "x-accel-buffering": "no",  # nginx in front must not buffer the stream
        }
        if stream.dropped_params:
            headers["x-switchboard-dropped-params"] = ",".join(stream.dropped_params)
        return ASGIStreamingResponse(
            iterator=sse_events(stream, services.metrics),
            media_type="text/event-stream",
            headers=headers,
        )

    completed = await services.router.complete(chat, options, request_id)
    services.metrics.observe(completed.metadata, completed.usage, stream=False)
    return JSONBytes(
        with_metadata(completed.response.body, completed.metadata),
        success_headers(
            completed.metadata, with_cost=True, dropped_params=completed.dropped_params
        ),
    )
