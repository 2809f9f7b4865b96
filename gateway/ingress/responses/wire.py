"""The Responses API's wire shapes, as the gateway reads and writes them.

Request side: typed where the gateway must understand a field (to validate it, route on
it, or translate it onto chat), raw elsewhere, so item, content and tool types the
gateway does not know are still forwarded to native upstreams untouched. Answer side:
the Response object, its output items and the stream events, in the shapes of OpenAI's
API reference for `POST /v1/responses` and its streaming events (the openai-python
`types/responses/` models say the same; `tests/fixtures/responses/README.md` lists the
pages).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Raw, UnsetType

from providers.chat_types import PositiveInt, Temperature, UnitInterval

# --- request ------------------------------------------------------------------------

# OpenAI's documented limits on `metadata`: 16 pairs, keys of 64 and values of 512 chars
MetadataKey = Annotated[str, Meta(max_length=64)]
MetadataValue = Annotated[str, Meta(max_length=512)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Meta(max_length=16)]


class Kind(msgspec.Struct):
    """An input item's `type`, read before the item itself: an item without one is a
    message (OpenAI's "easy input message")."""

    type: str = "message"


class PartKind(msgspec.Struct):
    type: str


class InputText(msgspec.Struct):
    text: str


class InputImage(msgspec.Struct, kw_only=True):
    image_url: str | None = None  # a URL or a data URL
    file_id: str | None = None  # OpenAI's file storage
    detail: Literal["low", "high", "auto", "original"] | None = None


class InputFile(msgspec.Struct, kw_only=True):
    file_data: str | None = None
    file_id: str | None = None
    file_url: str | None = None
    filename: str | None = None


class OutputTextPart(msgspec.Struct):
    text: str


class RefusalPart(msgspec.Struct):
    refusal: str


class MessageItem(msgspec.Struct, kw_only=True):
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[Raw]


class FunctionCallItem(msgspec.Struct, kw_only=True):
    call_id: str
    name: str
    arguments: str
    namespace: str | None = None


class FunctionCallOutputItem(msgspec.Struct, kw_only=True):
    call_id: str
    output: str | list[Raw]


class AdditionalToolsItem(msgspec.Struct, kw_only=True):
    """Tools offered from this point of the conversation on (Codex sends one)."""

    tools: list[Raw]


class FunctionTool(msgspec.Struct, kw_only=True):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedTool(msgspec.Struct, kw_only=True):
    """`tool_choice: {"type": "function", "name": ...}` and the entries of `allowed_tools`."""

    type: str
    name: str | None = None


class AllowedTools(msgspec.Struct, kw_only=True):
    mode: Literal["auto", "required"]
    tools: list[NamedTool]


class TextFormatText(msgspec.Struct, tag="text", tag_field="type"):
    pass


class TextFormatJSONObject(msgspec.Struct, tag="json_object", tag_field="type"):
    pass


class TextFormatJSONSchema(msgspec.Struct, tag="json_schema", tag_field="type", kw_only=True):
    # flattened, unlike chat's `response_format.json_schema`
    name: str
    schema: dict[str, Any]
    description: str | None = None
    strict: bool | None = None


TextFormat = TextFormatText | TextFormatJSONObject | TextFormatJSONSchema


class TextConfig(msgspec.Struct, kw_only=True):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class ReasoningConfig(msgspec.Struct, kw_only=True):
    effort: str | None = None  # none, minimal, low, medium, high, xhigh, ...
    summary: Literal["auto", "concise", "detailed"] | None = None
    generate_summary: Literal["auto", "concise", "detailed"] | None = None  # the old name


ToolChoiceMode = Literal["none", "auto", "required"]


class ResponsesRequest(msgspec.Struct, kw_only=True):
    """The fields of a Responses request the gateway reads; `decoding.py` fills it field
    by field so an error names its path. Unset fields stay UNSET."""

    model: str | UnsetType = UNSET
    input: str | list[Raw] | UnsetType = UNSET
    instructions: str | UnsetType = UNSET
    stream: bool = False
    tools: list[Raw] | UnsetType = UNSET
    tool_choice: ToolChoiceMode | dict[str, Raw] | UnsetType = UNSET
    parallel_tool_calls: bool | UnsetType = UNSET
    text: TextConfig | UnsetType = UNSET
    reasoning: ReasoningConfig | UnsetType = UNSET
    max_output_tokens: PositiveInt | UnsetType = UNSET
    max_tool_calls: PositiveInt | UnsetType = UNSET
    temperature: Temperature | UnsetType = UNSET
    top_p: UnitInterval | UnsetType = UNSET
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | UnsetType = UNSET
    metadata: Metadata | UnsetType = UNSET
    user: str | UnsetType = UNSET
    store: bool | UnsetType = UNSET
    previous_response_id: str | UnsetType = UNSET
    include: list[str] | UnsetType = UNSET
    background: bool | UnsetType = UNSET
    truncation: Literal["auto", "disabled"] | UnsetType = UNSET

    @property
    def stores(self) -> bool:
        """OpenAI keeps a response unless told `store: false`."""
        return self.store is not False


# --- answer: the Response object ----------------------------------------------------


class OutputText(msgspec.Struct, tag="output_text", tag_field="type", kw_only=True):
    text: str
    annotations: list[Any] = msgspec.field(default_factory=list)  # chat has no citations
    logprobs: list[Any] = msgspec.field(default_factory=list)


class OutputRefusal(msgspec.Struct, tag="refusal", tag_field="type", kw_only=True):
    refusal: str


OutputContent = OutputText | OutputRefusal
ItemStatus = Literal["in_progress", "completed", "incomplete"]


class OutputMessage(msgspec.Struct, tag="message", tag_field="type", kw_only=True):
    id: str
    status: ItemStatus
    role: Literal["assistant"] = "assistant"
    content: list[OutputContent]


class OutputFunctionCall(msgspec.Struct, tag="function_call", tag_field="type", kw_only=True):
    id: str
    status: ItemStatus
    call_id: str
    name: str
    arguments: str


class SummaryText(msgspec.Struct, tag="summary_text", tag_field="type", kw_only=True):
    text: str


class ReasoningText(msgspec.Struct, tag="reasoning_text", tag_field="type", kw_only=True):
    text: str


class OutputReasoning(msgspec.Struct, tag="reasoning", tag_field="type", kw_only=True):
    """The model's reasoning: as `summary` when the client asked for a summary
    (`reasoning.summary`), else as `content` (OpenAI's raw reasoning text)."""

    id: str
    summary: list[SummaryText]
    content: list[ReasoningText] | UnsetType = UNSET


OutputItem = OutputMessage | OutputFunctionCall | OutputReasoning


class InputTokensDetails(msgspec.Struct, kw_only=True):
    cached_tokens: int = 0


class OutputTokensDetails(msgspec.Struct, kw_only=True):
    reasoning_tokens: int = 0


class ResponsesUsage(msgspec.Struct, kw_only=True):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class ResponseError(msgspec.Struct, kw_only=True):
    code: str
    message: str


class IncompleteDetails(msgspec.Struct, kw_only=True):
    reason: Literal["max_output_tokens", "content_filter"]


class ReasoningEcho(msgspec.Struct, kw_only=True):
    effort: str | None = None
    summary: str | None = None


Status = Literal["in_progress", "completed", "incomplete", "failed"]

_TEXT_FORMAT = Raw(b'{"format":{"type":"text"}}')
_AUTO = Raw(b'"auto"')
_EMPTY_LIST = Raw(b"[]")
_EMPTY_OBJECT = Raw(b"{}")


class ResponseObject(msgspec.Struct, kw_only=True):
    """A Response as OpenAI writes one: the request's settings echoed, the output, usage."""

    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: Status
    background: bool = False
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    model: str
    output: list[OutputItem]
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    reasoning: ReasoningEcho = msgspec.field(default_factory=ReasoningEcho)
    store: bool = True
    temperature: float | None = 1.0
    text: Raw = _TEXT_FORMAT
    tool_choice: Raw = _AUTO
    tools: Raw = _EMPTY_LIST
    top_logprobs: int = 0
    top_p: float | None = 1.0
    truncation: str = "disabled"
    usage: ResponsesUsage | None = None
    user: str | None = None
    metadata: Raw = _EMPTY_OBJECT


# --- answer: stream events ----------------------------------------------------------
# Each carries `sequence_number`, numbered from 0 in the order sent.


class CreatedEvent(msgspec.Struct, tag="response.created", tag_field="type", kw_only=True):
    sequence_number: int
    response: ResponseObject


class InProgressEvent(msgspec.Struct, tag="response.in_progress", tag_field="type", kw_only=True):
    sequence_number: int
    response: ResponseObject


class CompletedEvent(msgspec.Struct, tag="response.completed", tag_field="type", kw_only=True):
    sequence_number: int
    response: ResponseObject


class IncompleteEvent(msgspec.Struct, tag="response.incomplete", tag_field="type", kw_only=True):
    sequence_number: int
    response: ResponseObject


class FailedEvent(msgspec.Struct, tag="response.failed", tag_field="type", kw_only=True):
    sequence_number: int
    response: ResponseObject


class ErrorEvent(msgspec.Struct, tag="error", tag_field="type", kw_only=True):
    sequence_number: int
    code: str | None
    message: str
    param: str | None


class ItemAddedEvent(
    msgspec.Struct, tag="response.output_item.added", tag_field="type", kw_only=True
):
    sequence_number: int
    output_index: int
    item: OutputItem


class ItemDoneEvent(
    msgspec.Struct, tag="response.output_item.done", tag_field="type", kw_only=True
):
    sequence_number: int
    output_index: int
    item: OutputItem


class PartAddedEvent(
    msgspec.Struct, tag="response.content_part.added", tag_field="type", kw_only=True
):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    part: OutputContent | ReasoningText


class PartDoneEvent(
    msgspec.Struct, tag="response.content_part.done", tag_field="type", kw_only=True
):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    part: OutputContent | ReasoningText


class TextDeltaEvent(
    msgspec.Struct, tag="response.output_text.delta", tag_field="type", kw_only=True
):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[Any] = msgspec.field(default_factory=list)


class TextDoneEvent(
    msgspec.Struct, tag="response.output_text.done", tag_field="type", kw_only=True
):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[Any] = msgspec.field(default_factory=list)


class RefusalDeltaEvent(
    msgspec.Struct, tag="response.refusal.delta", tag_field="type", kw_only=True
):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    delta: str


class RefusalDoneEvent(msgspec.Struct, tag="response.refusal.done", tag_field="type", kw_only=True):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    refusal: str


class ArgumentsDeltaEvent(
    msgspec.Struct, tag="response.function_call_arguments.delta", tag_field="type", kw_only=True
):
    sequence_number: int
    item_id: str
    output_index: int
    delta: str


class ArgumentsDoneEvent(
    msgspec.Struct, tag="response.function_call_arguments.done", tag_field="type", kw_only=True
):
    sequence_number: int
    item_id: str
    output_index: int
    arguments: str


class SummaryPartAddedEvent(
    msgspec.Struct, tag="response.reasoning_summary_part.added", tag_field="type", kw_only=True
):
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryText


class SummaryPartDoneEvent(
    msgspec.Struct, tag="response.reasoning_summary_part.done", tag_field="type", kw_only=True
):
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryText


class SummaryTextDeltaEvent(
    msgspec.Struct, tag="response.reasoning_summary_text.delta", tag_field="type", kw_only=True
):
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    delta: str


class SummaryTextDoneEvent(
    msgspec.Struct, tag="response.reasoning_summary_text.done", tag_field="type", kw_only=True
):
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    text: str


class ReasoningTextDeltaEvent(
    msgspec.Struct, tag="response.reasoning_text.delta", tag_field="type", kw_only=True
):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    delta: str


class ReasoningTextDoneEvent(
    msgspec.Struct, tag="response.reasoning_text.done", tag_field="type", kw_only=True
):
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    text: str


StreamEvent = (
    CreatedEvent
    | InProgressEvent
    | CompletedEvent
    | IncompleteEvent
    | FailedEvent
    | ErrorEvent
    | ItemAddedEvent
    | ItemDoneEvent
    | PartAddedEvent
    | PartDoneEvent
    | TextDeltaEvent
    | TextDoneEvent
    | RefusalDeltaEvent
    | RefusalDoneEvent
    | ArgumentsDeltaEvent
    | ArgumentsDoneEvent
    | SummaryPartAddedEvent
    | SummaryPartDoneEvent
    | SummaryTextDeltaEvent
    | SummaryTextDoneEvent
    | ReasoningTextDeltaEvent
    | ReasoningTextDoneEvent
)


def usage_of(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> ResponsesUsage:
    return ResponsesUsage(
        input_tokens=prompt,
        input_tokens_details=InputTokensDetails(cached_tokens=cached),
        output_tokens=completion,
        output_tokens_details=OutputTokensDetails(reasoning_tokens=reasoning),
        total_tokens=prompt + completion,
    )
