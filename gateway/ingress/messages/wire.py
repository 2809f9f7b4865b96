"""Anthropic Messages API wire types, as clients send and read them.

Request types are what the gateway checks and translates: strict where the API documents
a shape that every deployment needs (roles, `max_tokens`, ranges), lenient on content
blocks and tools, whose kinds Anthropic keeps adding (a block of a type these types do
not know still reaches a Messages-speaking deployment as the client wrote it, and is
named as dropped by a translation). Response and event types are what a translation
answers with; they leave out nothing the SDKs require (Messages API reference, "Create
a Message"; streaming guide; the `anthropic` SDK's `types/`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Raw, UnsetType

# --- request --------------------------------------------------------------------------
# (`Raw` fields are `| UnsetType`: msgspec reads `Raw | None` as `None` only)


class MessagesSource(msgspec.Struct, kw_only=True):
    """An image's or a document's `source`: `base64`, `url`, `text`, `content`, `file`."""

    type: str
    media_type: str | None = None
    data: str | None = None  # base64, or the text of a `text` source
    url: str | None = None
    file_id: str | None = None
    content: str | list[MessagesBlock] | None = None  # a `content` document source


class MessagesBlock(msgspec.Struct, kw_only=True):
    """Any content block; which fields are set depends on `type`."""

    type: str
    text: str | None = None  # text
    source: MessagesSource | None = None  # image, document
    title: str | None = None  # document
    id: str | None = None  # tool_use
    name: str | None = None  # tool_use
    input: Raw | UnsetType = UNSET  # tool_use: a JSON object, kept as the client's bytes
    tool_use_id: str | None = None  # tool_result
    content: str | list[MessagesBlock] | None = None  # tool_result
    is_error: bool | None = None  # tool_result
    thinking: str | None = None  # thinking
    signature: str | None = None  # thinking
    data: str | None = None  # redacted_thinking
    cache_control: Raw | UnsetType = UNSET  # any: a prompt-caching marker


class MessagesMessage(msgspec.Struct, kw_only=True):
    # `system` mid-conversation: the `mid-conversation-system-2026-04-07` beta, which
    # Claude Code sends
    role: Literal["user", "assistant", "system"]
    content: str | list[MessagesBlock]


class MessagesTool(msgspec.Struct, kw_only=True):
    """A client tool (`type` absent or `custom`, with `input_schema`), or a server tool
    (`web_search_…`, `bash_…`, … : the upstream runs it)."""

    name: str
    type: str | None = None
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    strict: bool | None = None
    cache_control: Raw | UnsetType = UNSET


class MessagesToolChoice(msgspec.Struct, kw_only=True):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class MessagesThinking(msgspec.Struct, kw_only=True):
    type: str  # enabled, disabled, adaptive
    budget_tokens: int | None = None


class MessagesMetadata(msgspec.Struct, kw_only=True):
    user_id: str | None = None


class MessagesOutputFormat(msgspec.Struct, kw_only=True):
    type: str  # json_schema
    schema: dict[str, Any] | None = None


class MessagesOutputConfig(msgspec.Struct, kw_only=True):
    effort: str | None = None  # low, medium, high, xhigh, max
    format: MessagesOutputFormat | None = None


UnitInterval = Annotated[float, Meta(ge=0, le=1)]


class MessagesRequest(msgspec.Struct, kw_only=True):
    """The fields the gateway reads (`null` reads as not sent); every field, known or
    not, is also kept as the client's bytes (see `decoding.MessagesInput`)."""

    model: str | None = None
    max_tokens: Annotated[int, Meta(ge=0)] | None = None
    messages: list[MessagesMessage] | None = None
    system: str | list[MessagesBlock] | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    temperature: UnitInterval | None = None
    top_p: UnitInterval | None = None
    top_k: Annotated[int, Meta(ge=0)] | None = None
    tools: list[MessagesTool] | None = None
    tool_choice: MessagesToolChoice | None = None
    thinking: MessagesThinking | None = None
    metadata: MessagesMetadata | None = None
    output_config: MessagesOutputConfig | None = None


# --- response (what a translation answers with) ---------------------------------------


class TextOut(msgspec.Struct, tag="text", tag_field="type"):
    text: str


class ThinkingOut(msgspec.Struct, tag="thinking", tag_field="type", kw_only=True):
    thinking: str
    # no signature: the answer did not come from Claude (a Messages deployment refuses
    # thinking blocks it cannot verify, so the gateway leaves these out when forwarding)
    signature: str = ""


class ToolUseOut(msgspec.Struct, tag="tool_use", tag_field="type", kw_only=True):
    id: str
    name: str
    input: Raw


ContentOut = TextOut | ThinkingOut | ToolUseOut


class UsageOut(msgspec.Struct, kw_only=True):
    """`input_tokens` excludes the cache reads, as Anthropic counts them."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class MessageOut(msgspec.Struct, kw_only=True):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[ContentOut]
    stop_reason: str | None
    stop_sequence: str | None = None
    usage: UsageOut


# --- stream events (what a translated stream is made of) ------------------------------


class MessageStartOut(msgspec.Struct, tag="message_start", tag_field="type"):
    message: MessageOut


class BlockStartOut(msgspec.Struct, tag="content_block_start", tag_field="type"):
    index: int
    content_block: ContentOut


class TextDeltaOut(msgspec.Struct, tag="text_delta", tag_field="type"):
    text: str


class ThinkingDeltaOut(msgspec.Struct, tag="thinking_delta", tag_field="type"):
    thinking: str


class SignatureDeltaOut(msgspec.Struct, tag="signature_delta", tag_field="type"):
    signature: str


class InputJSONDeltaOut(msgspec.Struct, tag="input_json_delta", tag_field="type"):
    partial_json: str


class BlockDeltaOut(msgspec.Struct, tag="content_block_delta", tag_field="type"):
    index: int
    delta: TextDeltaOut | ThinkingDeltaOut | SignatureDeltaOut | InputJSONDeltaOut


class BlockStopOut(msgspec.Struct, tag="content_block_stop", tag_field="type"):
    index: int


class StopOut(msgspec.Struct, kw_only=True):
    stop_reason: str | None
    stop_sequence: str | None = None


class MessageDeltaOut(msgspec.Struct, tag="message_delta", tag_field="type"):
    delta: StopOut
    usage: UsageOut


MESSAGE_STOP = b'{"type":"message_stop"}'
PING = b'{"type":"ping"}'
