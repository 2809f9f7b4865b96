"""A Responses API body: its typed fields, every field's raw bytes, and routing options.

The body is parsed once into `{field: raw bytes}` (as for chat); the fields the gateway
reads are decoded from their bytes into `ResponsesRequest`, so a bad value is a 400
naming its path, and the raw bytes are what a native upstream receives.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Raw

from gateway.chat_decoding import decode_field, decode_fields, field_decoders, route_options
from gateway.ingress.responses.wire import ResponsesRequest
from providers.errors import InvalidRequest
from routing.options import RouteOptions

_DECODERS = field_decoders(ResponsesRequest)
# what may stand in for `input`: a previous response to continue, a stored prompt
# template or conversation
_INPUT_SOURCES = ("input", "previous_response_id", "prompt", "conversation")
_NULL = Raw(b"null")


class DecodedBody(msgspec.Struct, kw_only=True):
    request: ResponsesRequest
    fields: dict[str, Raw]  # every top-level field, as the client sent it
    options: RouteOptions


def decode_responses_body(body: bytes) -> DecodedBody:
    fields = decode_fields(body)
    typed: dict[str, Any] = {}
    for name, value in fields.items():
        if name in _DECODERS:
            decoded = decode_field(name, value, _DECODERS)
            if decoded is not None:
                typed[name] = decoded
    if all(fields.get(name, _NULL) == _NULL for name in _INPUT_SOURCES):
        raise InvalidRequest(
            "Missing required parameter: 'input'.", param="input", code="missing_field"
        )
    request = ResponsesRequest(**typed)
    model = request.model if isinstance(request.model, str) else None
    return DecodedBody(request=request, fields=fields, options=route_options(model, fields))
