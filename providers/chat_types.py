"""Canonical OpenAI Chat Completions wire types.

These are the shapes clients send and receive. Provider adapters translate from and to
them; the gateway decodes requests into them. Request structs leave unset fields UNSET
so that re-encoding never invents a value the client did not send.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Raw, UnsetType

# --- request: content parts -----------------------------------------------------------


class TextPart(msgspec.Struct, tag="text", tag_field="type", kw_only=True):
    text: str


class ImageURL(msgspec.Struct, kw_only=True):
    url: str
    detail: Literal["auto", "low", "high"] | UnsetType = UNSET


class ImagePart(msgspec.Struct, tag="image_url", tag_field="type", kw_only=True):
    image_url: ImageURL


class InputAudio(msgspec.Struct, kw_only=True):
    data: str
    format: str


class AudioPart(msgspec.Struct, tag="input_audio", tag_field="type", kw_only=True):
    input_audio: InputAudio


class FileRef(msgspec.Struct, kw_only=True):
    file_data: str | UnsetType = UNSET
    file_id: str | UnsetType = UNSET
    filename: str | UnsetType = UNSET


class FilePart(msgspec.Struct, tag="file", tag_field="type", kw_only=True):
    file: FileRef


class RefusalPart(msgspec.Struct, tag="refusal", tag_field="type", kw_only=True):
    refusal: str


UserContentPart = TextPart | ImagePart | AudioPart | FilePart
AssistantContentPart = TextPart | RefusalPart

# --- request: messages ----------------------------------------------------------------


class FunctionCall(msgspec.Struct, kw_only=True):
    name: str
    arguments: str


class ToolCall(msgspec.Struct, kw_only=True):
    id: str
    function: FunctionCall
    type: Literal["function"] = "function"
    # vendor data a client must echo back with the call, keyed by vendor, e.g. Gemini's
    # `{"google": {"thought_signature": …}}` (Google's own OpenAI-compatible convention)
    extra_content: dict[str, Any] | UnsetType = UNSET


class SystemMessage(msgspec.Struct, tag="system", tag_field="role", kw_only=True):
    content: str | list[TextPart]
    name: str | UnsetType = UNSET


class DeveloperMessage(msgspec.Struct, tag="developer", tag_field="role", kw_only=True):
    content: str | list[TextPart]
    name: str | UnsetType = UNSET


class UserMessage(msgspec.Struct, tag="user", tag_field="role", kw_only=True):
    content: str | list[UserContentPart]
    name: str | UnsetType = UNSET


class AssistantMessage(msgspec.Struct, tag="assistant", tag_field="role", kw_only=True):
    content: str | list[AssistantContentPart] | None = None
    refusal: str | UnsetType | None = UNSET
    name: str | UnsetType = UNSET
    tool_calls: list[ToolCall] | UnsetType = UNSET
    function_call: FunctionCall | UnsetType | None = UNSET
    reasoning_content: str | UnsetType | None = UNSET


class ToolMessage(msgspec.Struct, tag="tool", tag_field="role", kw_only=True):
    content: str | list[TextPart]
    tool_call_id: str


class FunctionMessage(msgspec.Struct, tag="function", tag_field="role", kw_only=True):
    """Deprecated by OpenAI, still accepted by it."""

    content: str | None
    name: str


Message = (
    SystemMessage
    | DeveloperMessage
    | UserMessage
    | AssistantMessage
    | ToolMessage
    | FunctionMessage
)

# --- request: tools and formats -------------------------------------------------------


class FunctionDefinition(msgspec.Struct, kw_only=True):
    name: str
    description: str | UnsetType = UNSET
    parameters: dict[str, Any] | UnsetType = UNSET
    strict: bool | UnsetType | None = UNSET


class Tool(msgspec.Struct, kw_only=True):
    function: FunctionDefinition
    type: Literal["function"] = "function"


class NamedFunction(msgspec.Struct, kw_only=True):
    name: str


class NamedToolChoice(msgspec.Struct, kw_only=True):
    function: NamedFunction
    type: Literal["function"] = "function"


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class JSONSchemaFormat(msgspec.Struct, kw_only=True):
    name: str
    schema: dict[str, Any] | UnsetType = UNSET
    description: str | UnsetType = UNSET
    strict: bool | UnsetType | None = UNSET


class TextFormat(msgspec.Struct, tag="text", tag_field="type"):
    pass


class JSONObjectFormat(msgspec.Struct, tag="json_object", tag_field="type"):
    pass


class JSONSchemaResponseFormat(msgspec.Struct, tag="json_schema", tag_field="type", kw_only=True):
    json_schema: JSONSchemaFormat


ResponseFormat = TextFormat | JSONObjectFormat | JSONSchemaResponseFormat


class StreamOptions(msgspec.Struct, kw_only=True):
    include_usage: bool | UnsetType = UNSET


# --- request ------------------------------------------------------------------------

Temperature = Annotated[float, Meta(ge=0, le=2)]
UnitInterval = Annotated[float, Meta(ge=0, le=1)]
Penalty = Annotated[float, Meta(ge=-2, le=2)]
PositiveInt = Annotated[int, Meta(ge=1)]
Stop = str | Annotated[list[str], Meta(max_length=4)]


class ChatRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An OpenAI chat completions request, as the client sent it.

    `raw` holds every forwardable top-level field (known or not) as the client's own
    bytes, so OpenAI-compatible upstreams receive exactly what was sent; the typed fields
    are for validation, routing and translation to other APIs.
    """

    messages: Annotated[list[Message], Meta(min_length=1)]
    model: str | UnsetType = UNSET
    stream: bool = False
    stream_options: StreamOptions | UnsetType | None = UNSET
    temperature: Temperature | UnsetType | None = UNSET
    top_p: UnitInterval | UnsetType | None = UNSET
    n: Annotated[int, Meta(ge=1, le=128)] | UnsetType | None = UNSET
    stop: Stop | UnsetType | None = UNSET
    max_tokens: PositiveInt | UnsetType | None = UNSET
    max_completion_tokens: PositiveInt | UnsetType | None = UNSET
    presence_penalty: Penalty | UnsetType | None = UNSET
    frequency_penalty: Penalty | UnsetType | None = UNSET
    logit_bias: dict[str, float] | UnsetType | None = UNSET
    logprobs: bool | UnsetType | None = UNSET
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | UnsetType | None = UNSET
    seed: int | UnsetType | None = UNSET
    user: str | UnsetType = UNSET
    tools: list[Tool] | UnsetType = UNSET
    tool_choice: ToolChoice | UnsetType = UNSET
    parallel_tool_calls: bool | UnsetType = UNSET
    response_format: ResponseFormat | UnsetType = UNSET
    reasoning_effort: str | UnsetType | None = UNSET
    # provider-specific pass-through: {"openai": {...}, "anthropic": {...}}
    extensions: dict[str, dict[str, Raw]] | UnsetType = UNSET
    raw: dict[str, Raw] = msgspec.field(default_factory=dict)

    @property
    def output_limit(self) -> int | None:
        """The client's cap on completion tokens, whichever field it used."""
        for value in (self.max_completion_tokens, self.max_tokens):
            if isinstance(value, int):
                return value
        return None

    def estimated_prompt_tokens(self) -> int:
        """About four bytes of JSON a token, as tokenizers average on English text."""
        messages = self.raw.get("messages")
        return max(1, len(messages) // 4) if messages is not None else 1

    @property
    def wants_usage_chunk(self) -> bool:
        return (
            isinstance(self.stream_options, StreamOptions)
            and self.stream_options.include_usage is True
        )


# --- response -----------------------------------------------------------------------


class PromptTokensDetails(msgspec.Struct, kw_only=True):
    cached_tokens: int = 0
    audio_tokens: int | UnsetType = UNSET


class CompletionTokensDetails(msgspec.Struct, kw_only=True):
    reasoning_tokens: int = 0
    audio_tokens: int | UnsetType = UNSET
    accepted_prediction_tokens: int | UnsetType = UNSET
    rejected_prediction_tokens: int | UnsetType = UNSET


class Usage(msgspec.Struct, kw_only=True):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | UnsetType | None = UNSET
    completion_tokens_details: CompletionTokensDetails | UnsetType | None = UNSET

    @property
    def cached_tokens(self) -> int:
        details = self.prompt_tokens_details
        return details.cached_tokens if isinstance(details, PromptTokensDetails) else 0


class ResponseMessage(msgspec.Struct, kw_only=True):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCall] | UnsetType = UNSET
    reasoning_content: str | UnsetType = UNSET


class Choice(msgspec.Struct, kw_only=True):
    index: int
    message: ResponseMessage
    finish_reason: str | None
    logprobs: Any = None


class ChatResponse(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class ToolCallFunctionDelta(msgspec.Struct, kw_only=True):
    name: str | UnsetType = UNSET
    arguments: str | UnsetType = UNSET


class ToolCallDelta(msgspec.Struct, kw_only=True):
    index: int
    id: str | UnsetType = UNSET
    type: Literal["function"] | UnsetType = UNSET
    function: ToolCallFunctionDelta | UnsetType = UNSET
    extra_content: dict[str, Any] | UnsetType = UNSET  # as on `ToolCall`


class Delta(msgspec.Struct, kw_only=True):
    role: Literal["assistant"] | UnsetType = UNSET
    content: str | UnsetType | None = UNSET
    refusal: str | UnsetType | None = UNSET
    tool_calls: list[ToolCallDelta] | UnsetType = UNSET
    reasoning_content: str | UnsetType = UNSET


class ChunkChoice(msgspec.Struct, kw_only=True):
    index: int
    delta: Delta
    finish_reason: str | None = None
    logprobs: Any = None


class ChatChunk(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | UnsetType | None = UNSET
    system_fingerprint: str | UnsetType | None = UNSET
