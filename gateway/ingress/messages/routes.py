"""POST /v1/messages and POST /v1/messages/count_tokens"""

from __future__ import annotations

from litestar import Request, post
from litestar.datastructures import State
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import ASGIApp

from gateway.ingress.messages.answers import (
    answer_headers,
    message_body,
    message_events,
    stream_headers,
)
from gateway.ingress.messages.count_tokens import count_tokens
from gateway.ingress.messages.decoding import decode_messages
from gateway.ingress.messages.errors import MESSAGES_PATH
from gateway.ingress.messages.operations import (
    ClientHeaders,
    MessagesDispatch,
    planning_request,
)
from gateway.ingress.messages.to_chat import to_chat
from gateway.raw_response import JSONBytes
from gateway.services import Services

_BETA_QUERY = b"beta=true"


def client_headers(request: Request[object, object, State]) -> ClientHeaders:
    headers = request.headers
    betas = tuple(
        beta.strip()
        for value in headers.getall("anthropic-beta", [])
        for beta in value.split(",")
        if beta.strip()
    )
    return ClientHeaders(
        version=headers.get("anthropic-version"),
        betas=betas,
        beta_query=_BETA_QUERY in request.scope["query_string"],
    )


@post(MESSAGES_PATH, status_code=200)
async def create_message(request: Request[object, object, State]) -> ASGIApp:
    request_id: str = request.scope["state"]["request_id"]  # set by the middleware
    services: Services = request.app.state.services
    caller = services.auth.authenticate(request.headers)
    source = decode_messages(await request.body())
    for name in source.options.models:
        services.check_model_allowed(caller, name)
    client = client_headers(request)
    # planned on the chat translation: capabilities, limits and prices apply as on chat
    translation = to_chat(source, client.betas)
    options, router = source.options, services.router
    chat = planning_request(
        translation.chat,
        (d for name in options.models for d in services.models.resolve(name).deployments),
    )
    plan = router.plan(chat, options)
    dispatch = MessagesDispatch(services.providers, source, translation, client, request_id)

    if source.stream:
        stream = await router.stream(
            chat, options, request_id, plan=plan, open_stream=dispatch.open_stream
        )
        return ASGIStreamingResponse(
            iterator=message_events(stream, services.metrics),
            media_type="text/event-stream",
            headers=stream_headers(stream, request_id, dispatch.dropped()),
        )

    completed = await router.complete(chat, options, request_id, plan=plan, call=dispatch.complete)
    services.metrics.observe(completed.metadata, completed.usage, stream=False)
    return JSONBytes(
        message_body(completed), answer_headers(completed, request_id, dispatch.dropped())
    )


@post(MESSAGES_PATH + "/count_tokens", status_code=200)
async def count_message_tokens(request: Request[object, object, State]) -> ASGIApp:
    request_id: str = request.scope["state"]["request_id"]
    services: Services = request.app.state.services
    caller = services.auth.authenticate(request.headers)
    source = decode_messages(await request.body(), counting=True)
    for name in source.options.models:
        services.check_model_allowed(caller, name)
    body, headers = await count_tokens(services, source, client_headers(request), request_id)
    return JSONBytes(body, headers)
