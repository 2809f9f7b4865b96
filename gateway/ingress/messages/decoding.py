"""A Messages API body: every top-level field kept as the client's bytes (what a
Messages-speaking deployment receives), the fields the gateway reads decoded and
checked once, and the gateway's routing extensions read as on chat completions."""

from __future__ import annotations

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
_request_decoder = msgspec.json.Decoder(MessagesRequest)
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
    try:
        # one pass over the body in C; only a refused body is read field by field, for
        # an error that names the field
        request = _request_decoder.decode(body)
    except msgspec.ValidationError:
        for name, value in fields.items():
            if name in _DECODERS:
                decode_field(name, value, _DECODERS)
        raise InvalidRequest("The request body is not a Messages API request.") from None
    if request.messages is None:
        raise _missing("messages")
    if not request.messages:
        raise InvalidRequest("'messages' must have at least one message.", param="messages")
    if not counting and request.max_tokens is None:
        raise _missing("max_tokens")
    extensions = fields.get("extensions")
    return MessagesInput(
        request=request,
        fields={name: value for name, value in fields.items() if name not in GATEWAY_FIELDS},
        options=route_options(request.model, fields),
        extensions=None
        if extensions is None
        else decode_field("extensions", extensions, _DECODERS),
    )
