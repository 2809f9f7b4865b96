"""Gemini API wire types (https://ai.google.dev/api/generate-content).

Field names are snake_case here and camelCase on the wire (`rename="camel"`). Request
structs omit unset fields, so a body holds only what was translated. The same structs
read answers leniently: fields we do not translate (safety ratings, citations, grounding,
logprobs, code execution parts…) are simply not declared, and msgspec skips them.
"""

from __future__ import annotations

from typing import Any

import msgspec


class _Wire(msgspec.Struct, rename="camel", omit_defaults=True, kw_only=True):
    pass


# --- content -----------------------------------------------------------------------


class GeminiBlob(_Wire):
    """`inlineData`: bytes sent in the request, base64."""

    mime_type: str
    data: str


class GeminiFileData(_Wire):
    """`fileData`: content the API fetches itself (an uploaded file, or a URL)."""

    file_uri: str
    mime_type: str | None = None


class GeminiFunctionCall(_Wire):
    name: str
    args: dict[str, Any] | None = None
    id: str | None = None  # only some models fill it; see response.py


class GeminiFunctionResponse(_Wire):
    name: str
    response: dict[str, Any]


class GeminiPart(_Wire):
    """One part of a turn: exactly one of the data fields is set."""

    text: str | None = None
    thought: bool | None = None  # a summary of the model's thinking, not the answer
    # opaque token the model needs back with its function call (Gemini 3 enforces it)
    thought_signature: str | None = None
    inline_data: GeminiBlob | None = None
    file_data: GeminiFileData | None = None
    function_call: GeminiFunctionCall | None = None
    function_response: GeminiFunctionResponse | None = None


class GeminiContent(_Wire):
    parts: list[GeminiPart] = []
    role: str | None = None  # "user" or "model"; absent in `systemInstruction`


# --- request -----------------------------------------------------------------------


class GeminiFunctionDeclaration(_Wire):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None  # the OpenAPI subset, see schema.py


class GeminiTool(_Wire):
    function_declarations: list[GeminiFunctionDeclaration]


class GeminiFunctionCallingConfig(_Wire):
    mode: str  # AUTO | ANY | NONE
    allowed_function_names: list[str] | None = None


class GeminiToolConfig(_Wire):
    function_calling_config: GeminiFunctionCallingConfig


class GeminiThinkingConfig(_Wire):
    thinking_budget: int | None = None
    include_thoughts: bool | None = None


class GeminiGenerationConfig(_Wire):
    stop_sequences: list[str] | None = None
    response_mime_type: str | None = None
    response_schema: dict[str, Any] | None = None
    candidate_count: int | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    thinking_config: GeminiThinkingConfig | None = None


class GeminiRequest(_Wire):
    contents: list[GeminiContent]
    system_instruction: GeminiContent | None = None
    tools: list[GeminiTool] | None = None
    tool_config: GeminiToolConfig | None = None
    generation_config: GeminiGenerationConfig | None = None


# --- response ----------------------------------------------------------------------


class GeminiCandidate(_Wire):
    content: GeminiContent | None = None
    finish_reason: str | None = None
    index: int | None = None  # proto3 JSON leaves out a 0


class GeminiPromptFeedback(_Wire):
    block_reason: str | None = None


class GeminiUsageMetadata(_Wire):
    prompt_token_count: int = 0
    candidates_token_count: int = 0
    cached_content_token_count: int = 0
    thoughts_token_count: int = 0
    tool_use_prompt_token_count: int = 0
    total_token_count: int | None = None


class GeminiErrorDetail(_Wire):
    """One `google.rpc` status detail; we read RetryInfo and ErrorInfo."""

    type: str | None = msgspec.field(default=None, name="@type")
    retry_delay: str | None = None  # RetryInfo: a protobuf Duration, e.g. "7s"
    reason: str | None = None  # ErrorInfo: e.g. API_KEY_INVALID


class GeminiErrorBody(_Wire):
    code: int | None = None
    message: str | None = None
    status: str | None = None  # the google.rpc code name, e.g. RESOURCE_EXHAUSTED
    details: list[GeminiErrorDetail] = []


class GeminiErrorEnvelope(_Wire):
    error: GeminiErrorBody


class GeminiResponse(_Wire):
    """A `GenerateContentResponse`; in a stream, each event is one such fragment."""

    candidates: list[GeminiCandidate] = []
    prompt_feedback: GeminiPromptFeedback | None = None
    usage_metadata: GeminiUsageMetadata | None = None
    model_version: str | None = None
    response_id: str | None = None
    error: GeminiErrorBody | None = None  # an error sent in place of a stream fragment


response_decoder = msgspec.json.Decoder(GeminiResponse)
