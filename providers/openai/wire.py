"""What we read of an OpenAI-compatible upstream's answers.

The answer itself is passed through as the upstream's bytes; these lenient views only
pick out what routing needs (usage, whether a chunk carries output, errors) and check
that the bytes really are the documented JSON shape.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Raw, UnsetType

from providers.chat_types import CompletionTokensDetails, PromptTokensDetails, Usage


class _TokenDetailsView(msgspec.Struct):
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


class UsageView(msgspec.Struct):
    """`usage` as compatible servers really send it: some put `null` where they keep no
    count (`"prompt_tokens_details": {"cached_tokens": null}`), which must not make a
    good answer unreadable. Only what pricing reads is kept."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    prompt_tokens_details: _TokenDetailsView | UnsetType | None = UNSET
    completion_tokens_details: _TokenDetailsView | UnsetType | None = UNSET

    def usage(self) -> Usage:
        prompt, completion = self.prompt_tokens_details, self.completion_tokens_details
        return Usage(
            prompt_tokens=self.prompt_tokens or 0,
            completion_tokens=self.completion_tokens or 0,
            total_tokens=self.total_tokens or 0,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=prompt.cached_tokens or 0)
            if isinstance(prompt, _TokenDetailsView)
            else prompt,
            completion_tokens_details=CompletionTokensDetails(
                reasoning_tokens=completion.reasoning_tokens or 0
            )
            if isinstance(completion, _TokenDetailsView)
            else completion,
        )


class CompletionView(msgspec.Struct):
    choices: list[Raw]
    usage: UsageView | None = None


class DeltaView(msgspec.Struct):
    # a string, or a list of typed chunks (Mistral's reasoning models: `thinking`, `text`)
    content: str | list[Raw] | None = None
    tool_calls: list[Raw] | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None  # Groq's, OpenRouter's and vLLM's name for the same
    refusal: str | None = None
    # any JSON value (a legacy function call's name and arguments); `Raw | None` would
    # refuse every value but null
    function_call: Raw = Raw(b"null")


class ChunkChoiceView(msgspec.Struct):
    delta: DeltaView | None = None
    finish_reason: str | None = None


class UpstreamErrorDetail(msgspec.Struct):
    message: str | None = None
    type: str | None = None
    code: str | int | None = None
    param: str | None = None


class ChunkView(msgspec.Struct):
    choices: list[ChunkChoiceView] | None = None
    usage: UsageView | None = None
    error: UpstreamErrorDetail | str | None = None


class ErrorView(msgspec.Struct):
    """OpenAI's envelope, and the looser shapes compatible servers send instead."""

    error: UpstreamErrorDetail | str | None = None
    message: str | None = None
    detail: Any = None

    def summary(self) -> UpstreamErrorDetail:
        if isinstance(self.error, UpstreamErrorDetail):
            return self.error
        text = self.error or self.message or (str(self.detail) if self.detail else None)
        return UpstreamErrorDetail(message=text)


completion_decoder = msgspec.json.Decoder(CompletionView)
chunk_decoder = msgspec.json.Decoder(ChunkView)
error_decoder = msgspec.json.Decoder(ErrorView)
