"""A legacy completions body → a typed `CompletionRequest` plus its `RouteOptions`,
checked as OpenAI checks it (a 400 naming the field)."""

from __future__ import annotations

from gateway.chat_decoding import (
    decode_fields,
    field_decoders,
    forwardable,
    route_options,
    typed_fields,
)
from providers.completion_types import CompletionRequest, Prompt
from providers.errors import InvalidRequest
from routing.options import RouteOptions

_DECODERS = field_decoders(CompletionRequest)


def decode_completion_body(body: bytes) -> tuple[CompletionRequest, RouteOptions]:
    fields = decode_fields(body)
    typed = typed_fields(fields, _DECODERS)
    if "prompt" not in typed:
        raise InvalidRequest(
            "Missing required parameter: 'prompt'.", param="prompt", code="missing_field"
        )
    _check_prompt(typed["prompt"])
    request = CompletionRequest(**typed, raw=forwardable(fields))
    best_of = request.best_of
    if isinstance(best_of, int) and best_of < request.choices_per_prompt:
        raise InvalidRequest(
            "Invalid value for 'best_of': it must be at least 'n'.", param="best_of"
        )
    model = request.model if isinstance(request.model, str) else None
    return request, route_options(model, fields)


def _check_prompt(prompt: Prompt) -> None:
    """A string; a list of strings, of token ids, or of non-empty token arrays: one kind
    throughout (an empty string is a prompt, as OpenAI takes it)."""
    if isinstance(prompt, str):
        return
    if not prompt:
        raise InvalidRequest("Invalid value for 'prompt': it must not be empty.", param="prompt")
    if len({type(item) for item in prompt}) > 1:
        raise InvalidRequest(
            "Invalid value for 'prompt': a list must hold only strings, only token ids or "
            "only token arrays.",
            param="prompt",
        )
    for item in prompt:
        tokens = item if isinstance(item, list) else [item] if isinstance(item, int) else None
        if tokens is not None and (not tokens or min(tokens) < 0):
            raise InvalidRequest(
                "Invalid value for 'prompt': token arrays are non-empty lists of token ids "
                "of at least 0.",
                param="prompt",
            )
