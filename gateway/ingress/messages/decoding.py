"""A Messages API body: every top-level field kept as the client's bytes (what a
Messages-speaking deployment receives), the fields the gateway reads decoded and
checked once, and the gateway's routing extensions read as on chat completions."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Raw

from gateway.chat_decoding import (
    ROUTING_FIELDS,
    decode_field,
    decode_fields,
    field_decoders,
    route_options,
)
from gateway.ingress.messages.wire import MessagesRequest
from providers.errors import InvalidRequest
from routing.options import RouteOptions

# the gateway's own: read here, never sent to a deployment as they are
GATEWAY_FIELDS = frozenset({*ROUTING_FIELDS, "extensions"})
_DECODERS = {
    **field_decoders(MessagesRequest),
    "extensions": msgspec.json.Decoder(dict[str, dict[str, Raw]] | None),
}


class MessagesInput(msgspec.Struct, kw_only=True):
    request: MessagesRequest  # the fields the gateway reads
    fields: dict[str, Raw]  # every other top-level field too, as sent, less GATEWAY_FIELDS
    options: RouteOptions
    # `extensions: {openai: {...}, ...}`: merged into a translated deployment's body
    extensions: dict[str, dict[str, Raw]] | None = None

    @property
    def stream(self) -> bool:
        return self.request.stream is True


def _missing(name: str) -> InvalidRequest:
    return InvalidRequest(
        f"Missing required parameter: '{name}'.", param=name, code="missing_field"
    )


def decode_messages(body: bytes, *, counting: bool = False) -> MessagesInput:
    """`counting`: a `count_tokens` body, which has no `max_tokens`."""
    fields = decode_fields(body)
    typed: dict[str, Any] = {}
    for name, value in fields.items():
        if name in _DECODERS:
            decoded = decode_field(name, value, _DECODERS)
            if decoded is not None:
                typed[name] = decoded
    extensions = typed.pop("extensions", None)
    if not typed.get("messages"):
        raise _missing("messages")
    if not counting and "max_tokens" not in typed:
        raise _missing("max_tokens")
    return MessagesInput(
        request=MessagesRequest(**typed),
        fields={name: value for name, value in fields.items() if name not in GATEWAY_FIELDS},
        options=route_options(typed.get("model"), fields),
        extensions=extensions,
    )
