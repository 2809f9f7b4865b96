"""What a deployment can do: routing filters candidates by it, and a parameter a chosen
deployment cannot honour is dropped and named in `x-switchboard-dropped-params`."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from providers.chat_types import ChatRequest, ImagePart, JSONSchemaResponseFormat, UserMessage


class Capabilities(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tools: bool = True
    vision: bool = True
    json_schema: bool = True  # response_format: json_schema
    reasoning: bool = False  # reasoning_effort has an effect
    logprobs: bool = True
    multiple_choices: bool = True  # n > 1
    context_window: Annotated[int, Meta(ge=1)] | None = None  # tokens; None: unknown
    max_output_tokens: Annotated[int, Meta(ge=1)] | None = None


class CapabilityOverrides(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Config or catalogue corrections to an API's general capabilities, for one model."""

    tools: bool | None = None
    vision: bool | None = None
    json_schema: bool | None = None
    reasoning: bool | None = None
    logprobs: bool | None = None
    multiple_choices: bool | None = None
    context_window: Annotated[int, Meta(ge=1)] | None = None
    max_output_tokens: Annotated[int, Meta(ge=1)] | None = None


def with_overrides(base: Capabilities, *overrides: CapabilityOverrides | None) -> Capabilities:
    """`base` with every field an override sets replaced, later overrides winning."""
    changes = {
        name: value
        for override in overrides
        if override is not None
        for name in override.__struct_fields__
        if (value := getattr(override, name)) is not None
    }
    return msgspec.structs.replace(base, **changes) if changes else base


def needs_vision(request: ChatRequest) -> bool:
    return any(
        isinstance(m, UserMessage)
        and not isinstance(m.content, str)
        and any(isinstance(part, ImagePart) for part in m.content)
        for m in request.messages
    )


def droppable_unsupported(request: ChatRequest, capabilities: Capabilities) -> list[str]:
    """Parameters the request sets that these capabilities cannot honour but whose absence
    still gives a valid answer (so they are dropped, unless the client requires them)."""
    dropped: list[str] = []
    if not capabilities.logprobs:
        dropped += [p for p in ("logprobs", "top_logprobs") if p in request.raw]
    if not capabilities.multiple_choices and isinstance(request.n, int) and request.n > 1:
        dropped.append("n")
    if not capabilities.reasoning and "reasoning_effort" in request.raw:
        dropped.append("reasoning_effort")
    return dropped


class Needs(msgspec.Struct, frozen=True, kw_only=True):
    """What a request cannot do without, worked out once per request (routing checks it
    against every candidate deployment)."""

    tools: bool = False
    json_schema: bool = False
    vision: bool = False

    @classmethod
    def of(cls, request: ChatRequest) -> Needs:
        return cls(
            tools=isinstance(request.tools, list) and bool(request.tools),
            json_schema=isinstance(request.response_format, JSONSchemaResponseFormat),
            vision=needs_vision(request),
        )

    def missing_from(self, capabilities: Capabilities) -> str | None:
        """The capability these capabilities lack, if any."""
        if self.tools and not capabilities.tools:
            return "tools"
        if self.json_schema and not capabilities.json_schema:
            return "json_schema"
        if self.vision and not capabilities.vision:
            return "vision"
        return None


def missing_capability(request: ChatRequest, capabilities: Capabilities) -> str | None:
    """The capability the request cannot do without, if these capabilities lack one."""
    return Needs.of(request).missing_from(capabilities)
