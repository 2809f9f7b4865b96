"""POST /v1/embeddings: the request pipeline of every endpoint (see gateway/pipeline.py)
with the embeddings body, its planning needs and the providers' embeddings operation."""

from __future__ import annotations

import msgspec
from litestar import Request, post
from litestar.datastructures import State
from litestar.types import ASGIApp

from gateway.answers import success_headers, with_field, with_metadata
from gateway.ingress.embeddings.decoding import decode_embedding_body
from gateway.ingress.embeddings.planning import embed_call, embedding_needs
from gateway.pipeline import begin, read_json
from gateway.raw_response import JSONBytes
from providers.embedding_types import EmbeddingUsage

ENDPOINT = "embeddings"


@post("/v1/embeddings", status_code=200)
async def embeddings(request: Request[object, object, State]) -> ASGIApp:
    request_id: str = request.scope["state"]["request_id"]  # set by the middleware
    services, account, caller = begin(request, ENDPOINT)
    embedding, options = decode_embedding_body(await read_json(request, services))
    account.model = options.models[0]
    for name in options.models:
        services.check_model_allowed(caller, name)

    needs = embedding_needs(embedding)
    plan = services.router.plan(needs, options)
    await services.governance.admit(account, caller, plan, output_tokens=0)
    completed = await services.router.complete(
        needs,
        options,
        request_id,
        plan=plan,
        call=embed_call(services.providers, embedding, request_id),
    )
    account.succeeded(completed.metadata, completed.usage)
    body = completed.response.body
    if completed.response.usage is None:
        # the upstream counted no tokens: the client still gets OpenAI's usage object,
        # with the gateway's estimate (`routing_metadata.cost.estimated` says so)
        tokens = completed.usage.prompt_tokens
        usage = EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens)
        body = with_field(body, b"usage", msgspec.json.encode(usage))
    headers = success_headers(
        completed.metadata, with_cost=True, dropped_params=completed.dropped_params
    )
    if account.headers:
        headers.update(account.headers)
    return JSONBytes(with_metadata(body, completed.metadata), headers)
