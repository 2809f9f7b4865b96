"""POST /v1/messages and POST /v1/messages/count_tokens: the request pipeline of every
endpoint (see gateway/pipeline.py) with the Messages body, its planning needs and the
per-deployment operations (native or translated)."""

from __future__ import annotations

from litestar import Request, post
from litestar.datastructures import State
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import ASGIApp

from gateway.governance.input_limits import check_request
from gateway.ingress.messages.answers import (
    answer_headers,
    message_body,
    message_events,
    stream_headers,
)
from gateway.ingress.messages.count_tokens import count_tokens
from gateway.ingress.messages.decoding import decode_messages
from gateway.ingress.messages.errors import MESSAGES_PATH
from gateway.ingress.messages.operations import ClientHeaders, MessagesDispatch
from gateway.ingress.messages.planning import messages_needs
from gateway.ingress.messages.to_chat import to_chat
from gateway.pipeline import begin, read_json
from gateway.raw_response import JSONBytes

ENDPOINT = "messages"
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
    services, account, caller = begin(request, ENDPOINT)
    source = decode_messages(await read_json(request, services))
    options = source.options
    account.model = options.models[0]
    account.stream = source.stream
    for name in options.models:
        services.check_model_allowed(caller, name)
    client = client_headers(request)
    translation = to_chat(source, client.betas)
    check_request(translation.chat, services.config.limits)

    deployments = (d for name in options.models for d in services.models.resolve(name).deployments)
    needs = messages_needs(translation, deployments)
    router = services.router
    plan = router.plan(needs, options)
    await services.governance.admit(account, caller, plan, output_tokens=needs.output_limit or None)
    dispatch = MessagesDispatch(
        services.providers,
        source,
        translation,
        client,
        request_id,
        prompt_tokens=plan.prompt_tokens,
    )

    if source.stream:
        stream = await router.stream(
            needs, options, request_id, plan=plan, open_stream=dispatch.open_stream
        )
        headers = stream_headers(stream, request_id, dispatch.dropped())
        headers.update(account.headers)
        return ASGIStreamingResponse(
            iterator=message_events(stream, account),
            media_type="text/event-stream",
            headers=headers,
        )

    completed = await router.complete(needs, options, request_id, plan=plan, call=dispatch.complete)
    account.succeeded(completed.metadata, completed.usage)
    headers = answer_headers(completed, request_id, dispatch.dropped())
    headers.update(account.headers)
    return JSONBytes(message_body(completed), headers)


@post(MESSAGES_PATH + "/count_tokens", status_code=200)
async def count_message_tokens(request: Request[object, object, State]) -> ASGIApp:
    """Counting costs no generation: authenticated and checked against the key's models,
    not rate limited or charged (Anthropic meters it apart from messages, too)."""
    request_id: str = request.scope["state"]["request_id"]
    services, account, caller = begin(request, ENDPOINT + ".count_tokens")
    source = decode_messages(await read_json(request, services), counting=True)
    account.model = source.options.models[0]
    for name in source.options.models:
        services.check_model_allowed(caller, name)
    body, headers = await count_tokens(services, source, client_headers(request), request_id)
    account.answered()
    return JSONBytes(body, headers)
