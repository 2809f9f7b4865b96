"""Turn a chat completions body into a typed `ChatRequest` plus its `RouteOptions`.

The body is parsed once into `{field: raw bytes}`; each known field's bytes are then
decoded into its declared type, so range and shape checks happen in msgspec, and the raw
bytes of every field the client sent are kept for forwarding untouched. The steps are
public (`decode_fields`, `field_decoders`, `decode_field`, `field_error`,
`route_options`): every OpenAI-shaped endpoint decodes its body the same way.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any, Union

import msgspec
from msgspec import Raw

from providers.chat_types import ChatRequest
from providers.errors import InvalidRequest
from routing.options import GatewayOptions, ProviderPreferences, RouteOptions, RoutingPreferences

_encode = msgspec.json.encode
_fields_decoder = msgspec.json.Decoder(dict[str, Raw])
_AT = re.compile(r" - at `\$(.*)`$")
_MISSING = re.compile(r"^Object missing required field `([^`]+)`")
# consumed by the gateway, never forwarded upstream
ROUTING_FIELDS = ("models", "gateway", "routing", "provider")


def _nullable(tp: Any) -> Any:
    """Field types are `X | UnsetType`; a standalone decoder wants `X | None`, since
    OpenAI reads an explicit `null` as "not sent"."""
    args = typing.get_args(tp) if typing.get_origin(tp) in (Union, types.UnionType) else (tp,)
    kept = tuple(a for a in args if a is not msgspec.UnsetType and a is not type(None))
    return Union[(*kept, None)]


def field_decoders(struct: type[msgspec.Struct]) -> dict[str, msgspec.json.Decoder[Any]]:
    """A decoder per field of a request Struct (but `raw`), each reading `null` as unset."""
    return {
        field.name: msgspec.json.Decoder(_nullable(field.type))
        for field in msgspec.structs.fields(struct)
        if field.name != "raw"
    }


_DECODERS = field_decoders(ChatRequest)
_OPTION_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "models": msgspec.json.Decoder(list[str] | None),
    "gateway": msgspec.json.Decoder(GatewayOptions | None),
    "routing": msgspec.json.Decoder(RoutingPreferences | None),
    "provider": msgspec.json.Decoder(ProviderPreferences | None),
}


def field_error(name: str, exc: msgspec.ValidationError) -> InvalidRequest:
    """A 400 naming the path, inside the field `name`, of what failed to decode."""
    text = str(exc)
    path = name
    match = _AT.search(text)
    if match:
        text, path = text[: match.start()], name + match.group(1)
    missing = _MISSING.match(text)
    if missing:
        param = f"{path}.{missing.group(1)}"
        return InvalidRequest(
            f"Missing required parameter: '{param}'.", param=param, code="missing_field"
        )
    return InvalidRequest(f"Invalid value for '{path}': {text}.", param=path)


def decode_field(name: str, value: Raw, decoders: dict[str, msgspec.json.Decoder[Any]]) -> Any:
    """One field's bytes as its type; a 400 naming the field (and the path inside it)."""
    try:
        return decoders[name].decode(value)
    except msgspec.ValidationError as exc:
        raise field_error(name, exc) from None


def decode_fields(body: bytes) -> dict[str, Raw]:
    """The body's top-level fields, each as the client's bytes; a 400 unless the body is
    a JSON object in UTF-8."""
    # msgspec leaves the strings inside `Raw` values unchecked: without this, bad bytes
    # crash a later field decode or are forwarded upstream as they are
    if not body.isascii():
        try:
            body.decode()
        except UnicodeDecodeError as exc:
            raise InvalidRequest(
                f"The request body is not valid UTF-8 (byte {exc.start}).", code="invalid_json"
            ) from None
    try:
        fields = _fields_decoder.decode(body)
    except msgspec.ValidationError:
        raise InvalidRequest(
            "The request body must be a JSON object.", code="invalid_json"
        ) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(
            f"The request body is not valid JSON: {exc}.", code="invalid_json"
        ) from None
    except RecursionError:  # nesting beyond what the decoder can follow
        raise InvalidRequest(
            "The request body is nested too deeply.", code="json_too_deep"
        ) from None
    return fields


def typed_fields(
    fields: dict[str, Raw], decoders: dict[str, msgspec.json.Decoder[Any]]
) -> dict[str, Any]:
    """Each field a request Struct declares, decoded (an explicit `null`: not sent)."""
    typed: dict[str, Any] = {}
    for name, value in fields.items():
        if name in decoders:
            decoded = decode_field(name, value, decoders)
            if decoded is not None:
                typed[name] = decoded
    return typed


def forwardable(fields: dict[str, Raw]) -> dict[str, Raw]:
    """The fields an upstream may receive: all but the gateway's own."""
    return {k: v for k, v in fields.items() if k not in ROUTING_FIELDS and k != "extensions"}


def decode_chat_body(body: bytes) -> tuple[ChatRequest, RouteOptions]:
    fields = decode_fields(body)
    typed = typed_fields(fields, _DECODERS)
    if "messages" not in typed:
        raise InvalidRequest(
            "Missing required parameter: 'messages'.", param="messages", code="missing_field"
        )
    raw = forwardable(fields)
    _convert_functions(fields, typed, raw)
    request = ChatRequest(**typed, raw=raw)
    model = request.model if isinstance(request.model, str) else None
    return request, route_options(model, fields)


def _convert_functions(fields: dict[str, Raw], typed: dict[str, Any], raw: dict[str, Raw]) -> None:
    """The deprecated `functions` / `function_call` become `tools` / `tool_choice`."""
    if "functions" in fields and "tools" not in fields:
        functions = decode_field("functions", fields["functions"], _LEGACY_DECODERS)
        tools = [{"type": "function", "function": f} for f in functions]
        raw["tools"] = Raw(_encode(tools))
        try:
            typed["tools"] = _DECODERS["tools"].decode(raw["tools"])
        except msgspec.ValidationError as exc:  # an entry that is no function definition
            raise field_error("functions", _without_wrapper(exc)) from None
    if "function_call" in fields and "tool_choice" not in fields:
        call = decode_field("function_call", fields["function_call"], _LEGACY_DECODERS)
        choice: Any = call if isinstance(call, str) else {"type": "function", "function": call}
        raw["tool_choice"] = Raw(_encode(choice))
        typed["tool_choice"] = decode_field("function_call", raw["tool_choice"], _DECODERS_BY_ALIAS)
    raw.pop("functions", None)
    raw.pop("function_call", None)


def _without_wrapper(exc: msgspec.ValidationError) -> msgspec.ValidationError:
    """An error at `$[i].function...` of the converted tools, as at `$[i]...` of the
    `functions` the client sent."""
    return msgspec.ValidationError(str(exc).replace("].function", "]", 1))


class _FunctionName(msgspec.Struct):
    name: str


_LEGACY_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "functions": msgspec.json.Decoder(list[dict[str, Any]]),
    "function_call": msgspec.json.Decoder(typing.Literal["none", "auto"] | _FunctionName),
}
_DECODERS_BY_ALIAS = {"function_call": _DECODERS["tool_choice"]}


def route_options(model: str | None, fields: dict[str, Raw]) -> RouteOptions:
    """The routing controls of a body (`model`, `models`, `gateway`, `routing`,
    `provider`), from its fields and the `model` it names."""
    options: dict[str, Any] = {
        name: decode_field(name, fields[name], _OPTION_DECODERS)
        for name in ROUTING_FIELDS
        if name in fields
    }
    gateway: GatewayOptions | None = options.get("gateway")
    if gateway is not None and gateway.models and model is not None:
        raise InvalidRequest(
            "Send either 'model' or 'gateway.models', not both.",
            param="gateway.models",
            code="conflicting_fields",
        )
    names: list[str] = []
    for candidate in (
        [model] if model else [],
        options.get("models") or [],
        (gateway.models if gateway else None) or [],
    ):
        names.extend(n for n in candidate if n not in names)
    if not names:
        raise InvalidRequest(
            "Missing required parameter: 'model' (or 'models').",
            param="model",
            code="missing_field",
        )
    routing = options.get("routing") or (gateway.routing if gateway else None)
    return RouteOptions(
        models=names,
        routing=routing or RoutingPreferences(),
        provider=options.get("provider"),
        metadata=gateway.metadata if gateway else None,
    )
