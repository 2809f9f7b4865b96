"""Anthropic Messages API wire types.

Request types are what we send, so they are exact: unset optional fields stay UNSET and
are left out of the JSON. Response and stream types are what we read, so they are
lenient: one struct per object with every field optional, because Anthropic adds block
types, delta types and event types over time and documents that clients must skip the
ones they do not know.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET, Raw, UnsetType

# --- request: content blocks ----------------------------------------------------------


class AnthropicBase64Source(msgspec.Struct, tag="base64", tag_field="type", kw_only=True):
    media_type: str
    data: str


class AnthropicURLSource(msgspec.Struct, tag="url", tag_field="type", kw_only=True):
    url: str


class AnthropicTextBlock(msgspec.Struct, tag="text", tag_field="type", kw_only=True):
    text: str


class AnthropicImageBlock(msgspec.Struct, tag="image", tag_field="type", kw_only=True):
    source: AnthropicBase64Source | AnthropicURLSource


class AnthropicDocumentBlock(msgspec.Struct, tag="document", tag_field="type", kw_only=True):
    source: AnthropicBase64Source
    title: str | UnsetType = UNSET


class AnthropicToolUseBlock(msgspec.Struct, tag="tool_use", tag_field="type", kw_only=True):
    id: str
    name: str
    input: Raw  # a JSON object: the client's arguments, checked but not re-encoded


class AnthropicToolResultBlock(msgspec.Struct, tag="tool_result", tag_field="type", kw_only=True):
    tool_use_id: str
    content: str | list[AnthropicTextBlock]


AnthropicContentBlock = (
    AnthropicTextBlock
    | AnthropicImageBlock
    | AnthropicDocumentBlock
    | AnthropicToolUseBlock
    | AnthropicToolResultBlock
)


class AnthropicMessage(msgspec.Struct, kw_only=True):
    role: Literal["user", "assistant"]
    content: str | list[AnthropicContentBlock]


# --- request: tools, options ----------------------------------------------------------


class AnthropicTool(msgspec.Struct, kw_only=True):
    name: str
    input_schema: dict[str, Any]
    description: str | UnsetType = UNSET


class AnthropicToolChoice(msgspec.Struct, kw_only=True):
    type: Literal["auto", "any", "tool", "none"]
    name: str | UnsetType = UNSET
    disable_parallel_tool_use: bool | UnsetType = UNSET


class AnthropicThinking(msgspec.Struct, kw_only=True):
    budget_tokens: int
    type: Literal["enabled"] = "enabled"


class AnthropicMetadata(msgspec.Struct, kw_only=True):
    user_id: str


class AnthropicRequest(msgspec.Struct, kw_only=True):
    model: str
    max_tokens: int
    messages: list[AnthropicMessage]
    system: str | list[AnthropicTextBlock] | UnsetType = UNSET
    stop_sequences: list[str] | UnsetType = UNSET
    temperature: float | UnsetType = UNSET
    top_p: float | UnsetType = UNSET
    tools: list[AnthropicTool] | UnsetType = UNSET
    tool_choice: AnthropicToolChoice | UnsetType = UNSET
    thinking: AnthropicThinking | UnsetType = UNSET
    metadata: AnthropicMetadata | UnsetType = UNSET
    stream: bool | UnsetType = UNSET


# --- response: the Message object -----------------------------------------------------

_EMPTY_OBJECT = Raw(b"{}")


class AnthropicUsage(msgspec.Struct, kw_only=True):
    """Token counts. `input_tokens` excludes the cached parts, which are counted apart."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


class AnthropicResponseBlock(msgspec.Struct, kw_only=True):
    """Any content block of an answer; which fields are set depends on `type`."""

    type: str
    text: str | None = None  # text
    thinking: str | None = None  # thinking
    id: str | None = None  # tool_use
    name: str | None = None  # tool_use
    input: Raw = _EMPTY_OBJECT  # tool_use: a JSON object


class AnthropicResponse(msgspec.Struct, kw_only=True):
    id: str
    model: str
    content: list[AnthropicResponseBlock]
    stop_reason: str | None = None
    usage: AnthropicUsage | None = None


# --- errors ---------------------------------------------------------------------------


class AnthropicErrorDetail(msgspec.Struct, kw_only=True):
    type: str | None = None
    message: str | None = None


class AnthropicErrorBody(msgspec.Struct, kw_only=True):
    """`{"type": "error", "error": {"type": …, "message": …}, "request_id": …}`"""

    error: AnthropicErrorDetail | None = None


# --- streaming ------------------------------------------------------------------------


class AnthropicStreamDelta(msgspec.Struct, kw_only=True):
    """The `delta` of `content_block_delta` (by `type`) and of `message_delta`."""

    type: str | None = None
    text: str | None = None  # text_delta
    partial_json: str | None = None  # input_json_delta
    thinking: str | None = None  # thinking_delta
    stop_reason: str | None = None  # message_delta


class AnthropicStreamMessage(msgspec.Struct, kw_only=True):
    """The message skeleton of `message_start` (its content is still empty)."""

    id: str = ""
    model: str = ""
    usage: AnthropicUsage | None = None


class AnthropicStreamEvent(msgspec.Struct, kw_only=True):
    """One SSE event's data; which fields are set depends on `type`."""

    type: str
    message: AnthropicStreamMessage | None = None  # message_start
    index: int | None = None  # content_block_*
    content_block: AnthropicResponseBlock | None = None  # content_block_start
    delta: AnthropicStreamDelta | None = None  # content_block_delta, message_delta
    usage: AnthropicUsage | None = None  # message_delta (cumulative)
    error: AnthropicErrorDetail | None = None  # error


response_decoder = msgspec.json.Decoder(AnthropicResponse)
stream_event_decoder = msgspec.json.Decoder(AnthropicStreamEvent)
error_decoder = msgspec.json.Decoder(AnthropicErrorBody)
