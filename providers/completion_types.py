"""Canonical OpenAI legacy completions wire types (`POST /v1/completions`).

The request is checked as OpenAI documents it; OpenAI-compatible upstreams receive the
client's own bytes (`raw`). Answers and stream chunks are `text_completion` objects.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Raw, UnsetType

from providers.chat_types import Penalty, Stop, StreamOptions, Temperature, UnitInterval, Usage

# OpenAI's default when the request sets no `max_tokens`
DEFAULT_MAX_TOKENS = 16
Prompt = str | list[str | int | list[int]]


class CompletionRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An OpenAI legacy completions request, as the client sent it (see
    `ChatRequest.raw` for `raw`)."""

    prompt: Prompt
    model: str | UnsetType = UNSET
    suffix: str | UnsetType | None = UNSET
    max_tokens: Annotated[int, Meta(ge=0)] | UnsetType | None = UNSET
    temperature: Temperature | UnsetType | None = UNSET
    top_p: UnitInterval | UnsetType | None = UNSET
    n: Annotated[int, Meta(ge=1, le=128)] | UnsetType | None = UNSET
    stream: bool = False
    stream_options: StreamOptions | UnsetType | None = UNSET
    logprobs: Annotated[int, Meta(ge=0, le=5)] | UnsetType | None = UNSET
    echo: bool | UnsetType | None = UNSET
    stop: Stop | UnsetType | None = UNSET
    presence_penalty: Penalty | UnsetType | None = UNSET
    frequency_penalty: Penalty | UnsetType | None = UNSET
    best_of: Annotated[int, Meta(ge=1, le=20)] | UnsetType | None = UNSET
    logit_bias: dict[str, float] | UnsetType | None = UNSET
    user: str | UnsetType = UNSET
    seed: int | UnsetType | None = UNSET
    extensions: dict[str, dict[str, Raw]] | UnsetType = UNSET
    raw: dict[str, Raw] = msgspec.field(default_factory=dict)

    def prompts(self) -> list[str] | None:
        """The prompts as strings; None when they are token arrays."""
        if isinstance(self.prompt, str):
            return [self.prompt]
        if all(isinstance(item, str) for item in self.prompt):
            return [item for item in self.prompt if isinstance(item, str)]
        return None

    @property
    def prompt_count(self) -> int:
        prompt = self.prompt
        return (
            1
            if isinstance(prompt, str) or not prompt or isinstance(prompt[0], int)
            else len(prompt)
        )

    @property
    def choices_per_prompt(self) -> int:
        return self.n if isinstance(self.n, int) else 1

    @property
    def output_limit(self) -> int:
        """Tokens each choice may write: `max_tokens`, else OpenAI's default of 16."""
        return self.max_tokens if isinstance(self.max_tokens, int) else DEFAULT_MAX_TOKENS

    def estimated_prompt_tokens(self) -> int:
        """About four characters a token for text; a token array is counted exactly."""
        prompts = self.prompts()
        if prompts is not None:
            return max(1, sum((len(p) + 3) // 4 for p in prompts))
        items = self.prompt if isinstance(self.prompt, list) else []
        arrays = [item for item in items if isinstance(item, list)]
        return max(1, sum(map(len, arrays)) if arrays else len(items))

    @property
    def wants_usage_chunk(self) -> bool:
        return (
            isinstance(self.stream_options, StreamOptions)
            and self.stream_options.include_usage is True
        )

    def extension(self, vendor: str) -> dict[str, Raw]:
        extensions = self.extensions
        return extensions.get(vendor, {}) if isinstance(extensions, dict) else {}


class TextChoice(msgspec.Struct, kw_only=True):
    text: str
    index: int
    logprobs: Any = None
    finish_reason: str | None


class TextCompletion(msgspec.Struct, kw_only=True):
    """An answer, or (with `usage` unset) one stream chunk."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    system_fingerprint: str | UnsetType | None = UNSET
    choices: list[TextChoice]
    usage: Usage | UnsetType | None = UNSET
