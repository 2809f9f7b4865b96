"""POST /v1/chat/completions: the request pipeline (see gateway/pipeline.py)."""

from __future__ import annotations

from litestar import Request, post
from litestar.datastructures import State
from litestar.types import ASGIApp

from gateway.accounting import RequestAccount
from gateway.answers import SSEAnswer, success_headers, with_metadata
from gateway.auth import Caller
from gateway.chat_decoding import decode_chat_body
from gateway.governance.idempotency import Claim, Replay
from gateway.governance.input_limits import check_output_cap, check_request
from gateway.pipeline import begin, read_json
from gateway.raw_response import JSONBytes
from gateway.services import Services
from providers.chat_types import ChatRequest
from routing.options import RouteOptions

ENDPOINT = "chat.completions"


@post("/v1/chat/completions", status_code=200)
async def chat_completions(request: Request[object, object, State]) -> ASGIApp:
    request_id: str = request.scope["state"]["request_id"]  # set by the middleware
    services, account, caller = begin(request, ENDPOINT)
    body = await read_json(request, services)
    chat, options = decode_chat_body(body)
    account.model = options.models[0]
    account.stream = chat.stream
    check_request(chat, services.config.limits)
    for name in options.models:
        services.check_model_allowed(caller, name)
        check_output_cap(chat.output_limit, name, services.models.resolve(name).deployments)
    claim, idempotency_headers = await services.idempotency.begin(
        caller.name, request.headers, body, stream=chat.stream
    )
    account.headers.update(idempotency_headers)
    if isinstance(claim, Replay):  # answered before: nothing dispatched, nothing charged
        account.replayed_answer(claim.status)
        return JSONBytes(claim.body, claim.headers, claim.status)
    try:
        return await _dispatch(services, account, caller, chat, options, request_id, claim)
    except BaseException:
        if claim is not None:
            claim.release()  # an error is not kept: the client may try again
        raise


async def _dispatch(
    services: Services,
    account: RequestAccount,
    caller: Caller,
    chat: ChatRequest,
    options: RouteOptions,
    request_id: str,
    claim: Claim | None,
) -> ASGIApp:
    plan = services.router.plan(chat, options)
    await services.governance.admit(account, caller, plan, output_tokens=chat.output_limit)

    if chat.stream:
        stream = await services.router.stream(chat, options, request_id, plan=plan)
        headers = {
            "x-switchboard-provider": stream.candidate.deployment.provider,
            "x-switchboard-model": stream.candidate.deployment.model,
            "cache-control": "no-cache",
            "x-accel-buffering": "no",  # nginx in front must not buffer the stream
            **account.headers,
        }
        if stream.dropped_params:
            headers["x-switchboard-dropped-params"] = ",".join(stream.dropped_params)
        return SSEAnswer(stream, account, headers)

    completed = await services.router.complete(chat, options, request_id, plan=plan)
    account.succeeded(completed.metadata, completed.usage)
    headers = success_headers(
        completed.metadata, with_cost=True, dropped_params=completed.dropped_params
    )
    body = with_metadata(completed.response.body, completed.metadata)
    if claim is not None:
        claim.finish(200, headers, body)
    if account.headers:
        headers.update(account.headers)
    return JSONBytes(body, headers)
