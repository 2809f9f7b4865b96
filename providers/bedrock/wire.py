"""Bedrock Converse wire types (API reference: Converse, ConverseStream, ContentBlock,
ToolConfiguration, TokenUsage, ConverseStreamOutput).

Converse marks a union member by which key is present (`{"text": …}`, `{"toolUse": …}`),
not by a tag value, so each request block is its own one-key Struct, and the answer's
blocks are read through a lenient view with every member optional.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from msgspec import UNSET, Raw, UnsetType

# --- request ---------------------------------------------------------------------------


class BedrockText(msgspec.Struct):
    text: str


class BedrockBytesSource(msgspec.Struct):
    bytes: str  # base64, as Converse's JSON protocol carries blobs


class BedrockImage(msgspec.Struct):
    format: str  # png | jpeg | gif | webp
    source: BedrockBytesSource


class BedrockImageBlock(msgspec.Struct):
    image: BedrockImage


class BedrockDocument(msgspec.Struct):
    format: str  # pdf | csv | doc | docx | xls | xlsx | html | txt | md
    name: str
    source: BedrockBytesSource


class BedrockDocumentBlock(msgspec.Struct):
    document: BedrockDocument


class BedrockAudio(msgspec.Struct):
    format: str
    source: BedrockBytesSource


class BedrockAudioBlock(msgspec.Struct):
    audio: BedrockAudio


class BedrockToolUse(msgspec.Struct, rename="camel"):
    tool_use_id: str
    name: str
    input: Raw  # a JSON object


class BedrockToolUseBlock(msgspec.Struct, rename="camel"):
    tool_use: BedrockToolUse


class BedrockToolResult(msgspec.Struct, rename="camel"):
    tool_use_id: str
    content: list[BedrockText]


class BedrockToolResultBlock(msgspec.Struct, rename="camel"):
    tool_result: BedrockToolResult


BedrockContentBlock = (
    BedrockText
    | BedrockImageBlock
    | BedrockDocumentBlock
    | BedrockAudioBlock
    | BedrockToolUseBlock
    | BedrockToolResultBlock
)


class BedrockMessage(msgspec.Struct):
    role: Literal["user", "assistant"]
    content: list[BedrockContentBlock]


class BedrockInferenceConfig(msgspec.Struct, rename="camel", omit_defaults=True):
    max_tokens: int | UnsetType = UNSET
    temperature: float | UnsetType = UNSET
    top_p: float | UnsetType = UNSET
    stop_sequences: list[str] | UnsetType = UNSET


class BedrockInputSchema(msgspec.Struct):
    json: Raw  # a JSON Schema object, as the client wrote it


class BedrockToolSpec(msgspec.Struct, rename="camel", omit_defaults=True):
    name: str
    input_schema: BedrockInputSchema
    description: str | UnsetType = UNSET
    strict: bool | UnsetType = UNSET


class BedrockTool(msgspec.Struct, rename="camel"):
    tool_spec: BedrockToolSpec


class BedrockNoOptions(msgspec.Struct):
    """`{}`: the `auto` and `any` tool choices carry no fields."""


class BedrockNamedTool(msgspec.Struct):
    name: str


class BedrockToolChoice(msgspec.Struct, omit_defaults=True):
    """Exactly one member is set."""

    auto: BedrockNoOptions | UnsetType = UNSET
    any: BedrockNoOptions | UnsetType = UNSET
    tool: BedrockNamedTool | UnsetType = UNSET


class BedrockToolConfig(msgspec.Struct, rename="camel", omit_defaults=True):
    tools: list[BedrockTool]
    tool_choice: BedrockToolChoice | UnsetType = UNSET


class BedrockThinking(msgspec.Struct, kw_only=True):
    """Claude's extended thinking, as Anthropic models on Bedrock take it inside
    `additionalModelRequestFields`."""

    type: Literal["enabled"] = "enabled"
    budget_tokens: int


class BedrockClaudeFields(msgspec.Struct):
    thinking: BedrockThinking


class BedrockConverseRequest(msgspec.Struct, rename="camel", omit_defaults=True):
    messages: list[BedrockMessage]
    system: list[BedrockText] | UnsetType = UNSET
    inference_config: BedrockInferenceConfig | UnsetType = UNSET
    tool_config: BedrockToolConfig | UnsetType = UNSET
    additional_model_request_fields: BedrockClaudeFields | UnsetType = UNSET
    # tags recorded with the call in Bedrock's invocation logs: how our request id reaches
    # them (Converse has no header for it)
    request_metadata: dict[str, str] | UnsetType = UNSET


# --- response --------------------------------------------------------------------------


class BedrockUsage(msgspec.Struct, rename="camel"):
    input_tokens: int = 0  # not counting the cache reads and writes below
    output_tokens: int = 0
    total_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_write_input_tokens: int = 0


class BedrockToolUseView(msgspec.Struct, rename="camel"):
    tool_use_id: str
    name: str
    input: Raw = Raw(b"{}")


class BedrockReasoningText(msgspec.Struct):
    text: str = ""
    signature: str | None = None


class BedrockReasoningView(msgspec.Struct, rename="camel"):
    reasoning_text: BedrockReasoningText | None = None
    redacted_content: str | None = None  # encrypted reasoning: nothing a client can read


class BedrockBlockView(msgspec.Struct, rename="camel"):
    text: str | None = None
    tool_use: BedrockToolUseView | None = None
    reasoning_content: BedrockReasoningView | None = None


class BedrockMessageView(msgspec.Struct):
    role: str = "assistant"
    content: list[BedrockBlockView] = msgspec.field(default_factory=list)


class BedrockOutput(msgspec.Struct):
    message: BedrockMessageView | None = None


class BedrockConverseResponse(msgspec.Struct, rename="camel"):
    output: BedrockOutput
    stop_reason: str
    usage: BedrockUsage | None = None


class BedrockErrorBody(msgspec.Struct):
    """AWS JSON errors: `message`, or `Message` from some front ends."""

    message: str | None = None
    Message: str | None = None

    @property
    def text(self) -> str | None:
        return self.message or self.Message


# --- converse-stream event payloads (the event's name is in its `:event-type` header) --


class BedrockMessageStart(msgspec.Struct):
    role: str = "assistant"


class BedrockToolUseStart(msgspec.Struct, rename="camel"):
    tool_use_id: str
    name: str


class BedrockBlockStart(msgspec.Struct, rename="camel"):
    tool_use: BedrockToolUseStart | None = None


class BedrockContentBlockStart(msgspec.Struct, rename="camel"):
    content_block_index: int
    start: BedrockBlockStart


class BedrockToolUseDelta(msgspec.Struct):
    input: str = ""  # the next piece of the input's JSON text


class BedrockReasoningDelta(msgspec.Struct, rename="camel"):
    text: str | None = None
    signature: str | None = None
    redacted_content: str | None = None


class BedrockBlockDelta(msgspec.Struct, rename="camel"):
    text: str | None = None
    tool_use: BedrockToolUseDelta | None = None
    reasoning_content: BedrockReasoningDelta | None = None


class BedrockContentBlockDelta(msgspec.Struct, rename="camel"):
    content_block_index: int
    delta: BedrockBlockDelta


class BedrockContentBlockStop(msgspec.Struct, rename="camel"):
    content_block_index: int


class BedrockMessageStop(msgspec.Struct, rename="camel"):
    stop_reason: str


class BedrockStreamMetadata(msgspec.Struct):
    usage: BedrockUsage | None = None


class BedrockStreamException(msgspec.Struct, rename="camel"):
    """An `:message-type: exception` event; its kind is in `:exception-type`."""

    message: str | None = None
    original_status_code: int | None = None  # modelStreamErrorException
    original_message: str | None = None


BedrockStreamEvent = (
    BedrockMessageStart
    | BedrockContentBlockStart
    | BedrockContentBlockDelta
    | BedrockContentBlockStop
    | BedrockMessageStop
    | BedrockStreamMetadata
)

# `:event-type` → payload shape; other event types (added later by AWS) are skipped
STREAM_EVENT_TYPES: dict[str, type[BedrockStreamEvent]] = {
    "messageStart": BedrockMessageStart,
    "contentBlockStart": BedrockContentBlockStart,
    "contentBlockDelta": BedrockContentBlockDelta,
    "contentBlockStop": BedrockContentBlockStop,
    "messageStop": BedrockMessageStop,
    "metadata": BedrockStreamMetadata,
}

response_decoder = msgspec.json.Decoder(BedrockConverseResponse)
error_decoder = msgspec.json.Decoder(BedrockErrorBody)
stream_exception_decoder = msgspec.json.Decoder(BedrockStreamException)
