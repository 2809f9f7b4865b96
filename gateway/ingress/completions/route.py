"""POST /v1/completions: the request pipeline of every endpoint (see gateway/pipeline.py)
with the legacy completions body, its planning needs and the providers' operation."""

from __future__ import annotations

import time

import msgspec
from litestar import Request, post
from litestar.datastructures import State
from litestar.types import ASGIApp

from gateway.answers import SSEAnswer, stream_identity, success_headers, with_metadata
from gateway.ingress.completions.decoding import decode_completion_body
from gateway.ingress.completions.planning import (
    complete_call,
    completion_needs,
    open_stream,
    output_tokens,
)
from gateway.pipeline import begin, read_json
from gateway.raw_response import JSONBytes
from providers.completion_types import TextCompletion
from routing.router import RoutedStream

ENDPOINT = "completions"


def closing_chunk(stream: RoutedStream) -> bytes:
    """For upstreams that send no usage chunk: a `text_completion` with no choices and
    the gateway's own usage count, under the stream's own id."""
    first = stream_identity(stream)
    chunk = TextCompletion(
        id=first.id or f"cmpl-{stream.request_id}",
        created=first.created or int(time.time()),
        model=first.model or stream.candidate.deployment.model,
        choices=[],
        usage=stream.usage,
    )
    return msgspec.json.encode(chunk)


@post("/v1/completions", status_code=200)
async def completions(request: Request[object, object, State]) -> ASGIApp:
    request_id: str = request.scope["state"]["request_id"]  # set by the middleware
    services, account, caller = begin(request, ENDPOINT)
    completion, options = decode_completion_body(await read_json(request, services))
    account.model = options.models[0]
    account.stream = completion.stream
    for name in options.models:
        services.check_model_allowed(caller, name)

    needs = completion_needs(completion)
    plan = services.router.plan(needs, options)
    await services.governance.admit(account, caller, plan, output_tokens=output_tokens(completion))
    providers = services.providers

    if completion.stream:
        stream = await services.router.stream(
            needs,
            options,
            request_id,
            plan=plan,
            open_stream=open_stream(providers, completion, request_id),
        )
        headers = {
            "x-switchboard-provider": stream.candidate.deployment.provider,
            "x-switchboard-model": stream.candidate.deployment.model,
            "cache-control": "no-cache",
            "x-accel-buffering": "no",  # nginx in front must not buffer the stream
            **account.headers,
        }
        if stream.dropped_params:
            headers["x-switchboard-dropped-params"] = ",".join(stream.dropped_params)
        return SSEAnswer(stream, account, headers, closing_chunk=closing_chunk)

    completed = await services.router.complete(
        needs,
        options,
        request_id,
        plan=plan,
        call=complete_call(providers, completion, request_id),
    )
    account.succeeded(completed.metadata, completed.usage)
    headers = success_headers(
        completed.metadata, with_cost=True, dropped_params=completed.dropped_params
    )
    if account.headers:
        headers.update(account.headers)
    return JSONBytes(with_metadata(completed.response.body, completed.metadata), headers)
