"""GET /v1/generations/{id} and OpenRouter's GET /api/v1/generation?id=: a past request
by its id. The admin key reads any; a gateway key only the requests it made (another's
is 404, as an unknown one: which ids exist is not told); with `auth: none`, anyone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.params import FromPath

from gateway.accounting import RequestRecord
from gateway.errors import JSON
from gateway.observability.generations.views import generation, openrouter_generation
from gateway.request_ids import acceptable_request_id
from gateway.services import Services
from providers.errors import InvalidRequest, NotFound


class GenerationNotFound(NotFound):
    code = "generation_not_found"


async def _readable(services: Services, headers: Mapping[str, str], wanted: str) -> RequestRecord:
    admin = services.admin.is_admin(headers)
    # a client key (401 without one); under `auth: none` every request is everyone's
    owner = None if admin or services.auth.open else services.auth.authenticate(headers).name
    request_id = acceptable_request_id(wanted)
    record = await services.generations.get(request_id) if request_id else None
    if record is None or (owner is not None and record.key != owner):
        raise GenerationNotFound(
            f"No request '{wanted[:128]}' is known to this key: it is unknown, made by "
            f"another key, or older than generations.retention.",
            param="id",
        )
    return record


@get("/v1/generations/{generation_id:str}")
async def get_generation(
    request: Request[Any, Any, Any], generation_id: FromPath[str]
) -> Response[bytes]:
    services: Services = request.app.state.services
    record = await _readable(services, request.headers, generation_id)
    return Response(msgspec.json.encode(generation(record)), media_type=JSON)


@get("/api/v1/generation")
async def get_openrouter_generation(request: Request[Any, Any, Any]) -> Response[bytes]:
    services: Services = request.app.state.services
    wanted = request.query_params.get("id")
    if not wanted:
        raise InvalidRequest(
            "Missing the generation's id: ?id=...", code="missing_field", param="id"
        )
    record = await _readable(services, request.headers, wanted)
    return Response(msgspec.json.encode(openrouter_generation(record)), media_type=JSON)
