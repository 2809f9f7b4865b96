"""An embeddings body → a typed `EmbeddingRequest` plus its `RouteOptions`, checked as
OpenAI checks it (a 400 naming `input` for what OpenAI refuses)."""

from __future__ import annotations

from gateway.chat_decoding import (
    decode_fields,
    field_decoders,
    forwardable,
    route_options,
    typed_fields,
)
from providers.embedding_types import MAX_INPUTS, EmbeddingRequest
from providers.errors import InvalidRequest
from routing.options import RouteOptions

_DECODERS = field_decoders(EmbeddingRequest)


def decode_embedding_body(body: bytes) -> tuple[EmbeddingRequest, RouteOptions]:
    fields = decode_fields(body)
    typed = typed_fields(fields, _DECODERS)
    if "input" not in typed:
        raise InvalidRequest(
            "Missing required parameter: 'input'.", param="input", code="missing_field"
        )
    _check_input(typed["input"])
    request = EmbeddingRequest(**typed, raw=forwardable(fields))
    model = request.model if isinstance(request.model, str) else None
    return request, route_options(model, fields)


def _invalid(why: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid value for 'input': {why}.", param="input")


def _check_input(value: str | list[str | int | list[int]]) -> None:
    """A non-empty string, or a non-empty list (at most 2048 items) of non-empty strings,
    of token ids, or of non-empty token arrays: one kind throughout."""
    if isinstance(value, str):
        if not value:
            raise _invalid("it must not be an empty string")
        return
    if not value:
        raise _invalid("it must not be an empty list")
    if len(value) > MAX_INPUTS:
        raise _invalid(f"at most {MAX_INPUTS} inputs are allowed in one request")
    kinds = {type(item) for item in value}
    if len(kinds) > 1:
        raise _invalid("a list must hold only strings, only token ids or only token arrays")
    for item in value:
        if isinstance(item, str | list) and not item:
            raise _invalid("no input may be empty")
        tokens = item if isinstance(item, list) else [item] if isinstance(item, int) else []
        if any(token < 0 for token in tokens):
            raise _invalid("token ids are never negative")
