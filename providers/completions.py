"""The legacy completions operation (`POST /v1/completions`) an upstream API may offer.

A provider that speaks it sets `Provider.legacy_completions` to one of these. Answers are
`text_completion` JSON objects: a `ProviderResponse`, or `StreamChunk`s (one object each,
the last with `choices: []` and usage, as OpenAI sends them).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator

import msgspec

from providers.base import ProviderResponse, StreamChunk
from providers.completion_types import CompletionRequest


class TextCompletionCall(msgspec.Struct, kw_only=True):
    """One attempt at one deployment."""

    request: CompletionRequest
    model: str  # the provider's own id for the model
    request_id: str = ""
    drop_params: tuple[str, ...] = ()  # what routing decided this deployment will not honour


class CompletionsAPI(ABC):
    """An upstream's legacy completions endpoint. Raises only `ProviderError`s."""

    def unsupported_params(self, request: CompletionRequest, model: str) -> list[str]:
        """Parameters it will not honour but can answer without (dropped and named)."""
        return []

    @abstractmethod
    async def complete(self, call: TextCompletionCall) -> ProviderResponse: ...

    @abstractmethod
    def stream(self, call: TextCompletionCall) -> AsyncGenerator[StreamChunk, None]:
        """Yield chunks; closing the iterator early must close the upstream request."""
