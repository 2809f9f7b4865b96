"""POST /v1/embeddings"""

from __future__ import annotations

import msgspec
from litestar import Request, post
from litestar.datastructures import State
from litestar.types import ASGIApp

from gateway.answers import success_headers, with_field, with_metadata
from gateway.ingress.embeddings.decoding import decode_embedding_body
from gateway.ingress.embeddings.planning import embed_call, embedding_needs
from gateway.raw_response import JSONBytes
from gateway.services import Services
from providers.embedding_types import EmbeddingUsage


@post("/v1/embeddings", status_code=200)
async def embeddings(request: Request[object, object, State]) -> ASGIApp:
    request_id: str = request.scope["state"]["request_id"]  # set by the middleware
    services: Services = request.app.state.services
    caller = services.auth.authenticate(request.headers)
    embedding, options = decode_embedding_body(await request.body())
    for name in options.models:
        services.check_model_allowed(caller, name)

    completed = await services.router.complete(
        embedding_needs(embedding),
        options,
        request_id,
        call=embed_call(services.providers, embedding, request_id),
    )
    services.metrics.observe(completed.metadata, completed.usage, stream=False)
    body = completed.response.body
    if completed.response.usage is None:
        # the upstream counted no tokens: the client still gets OpenAI's usage object,
        # with the gateway's estimate (`routing_metadata.cost.estimated` says so)
        tokens = completed.usage.prompt_tokens
        usage = EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens)
        body = with_field(body, b"usage", msgspec.json.encode(usage))
    return JSONBytes(
        with_metadata(body, completed.metadata),
        success_headers(
            completed.metadata, with_cost=True, dropped_params=completed.dropped_params
        ),
    )
