"""What a deployment with a Responses API of its own is sent: the client's body.

The gateway's own fields come out (routing controls, `extensions`, which the provider
merges for itself); a parameter routing dropped for the deployment comes out by its
Responses name; and a previous response the gateway kept (the upstream does not know its
id) goes in as the conversation it holds, before `input`, in place of
`previous_response_id`.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from msgspec import Raw

from gateway.chat_decoding import ROUTING_FIELDS

_encode = msgspec.json.encode
_item_fields = msgspec.json.Decoder(dict[str, Raw])
_input_items = msgspec.json.Decoder(list[Raw])
_GATEWAY_FIELDS = frozenset((*ROUTING_FIELDS, "extensions"))

# chat parameters routing may drop for a deployment, by their Responses names
RESPONSES_NAMES = {
    "max_completion_tokens": "max_output_tokens",
    "max_tokens": "max_output_tokens",
    "reasoning_effort": "reasoning",
    "response_format": "text",
    "logprobs": "top_logprobs",
    "top_logprobs": "top_logprobs",
}


def responses_names(chat_names: Iterable[str]) -> tuple[str, ...]:
    """Chat parameter names as the Responses API names them, without repeats."""
    return tuple(dict.fromkeys(RESPONSES_NAMES.get(name, name) for name in chat_names))


def forwarded_fields(fields: dict[str, Raw], history: list[Raw] | None) -> dict[str, Raw]:
    """`history`: the conversation of a previous response the gateway kept, if any."""
    forwarded = {name: value for name, value in fields.items() if name not in _GATEWAY_FIELDS}
    if history is not None:
        forwarded.pop("previous_response_id", None)
        forwarded["input"] = Raw(_encode([*native_history(history), *_input_of(fields)]))
    return forwarded


def _input_of(fields: dict[str, Raw]) -> list[Raw]:
    value = fields.get("input")
    if value is None or value == Raw(b"null"):
        return []
    if bytes(value)[:1] == b'"':  # a string is one user message
        return [Raw(b'{"role":"user","content":' + bytes(value) + b"}")]
    return _input_items.decode(value)


def native_history(items: list[Raw]) -> list[Raw]:
    """Items the gateway kept, as a native upstream takes them as input: without the
    gateway's item ids (the upstream has never stored those items) and without reasoning
    that carries no `encrypted_content` (a reasoning item is only accepted back with its
    encrypted state, or by the id of one the upstream stored)."""
    converted = []
    for raw in items:
        item = _item_fields.decode(raw)
        if item.get("type") == Raw(b'"reasoning"'):
            if "encrypted_content" not in item:
                continue
        else:
            item.pop("id", None)
        converted.append(Raw(_encode(item)))
    return converted
