"""The embeddings operation an upstream API may offer beside chat.

A provider that can embed sets `Provider.embeddings` to one of these (each adapter's own
module: `providers/openai/embeddings.py`, ...). Its answer is an OpenAI embeddings JSON
object in a `ProviderResponse`, with `usage` when the upstream counted the tokens.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import msgspec

from providers.base import ProviderResponse
from providers.chat_types import Usage
from providers.embedding_types import EmbeddingRequest


class EmbeddingCall(msgspec.Struct, kw_only=True):
    """One attempt at one deployment."""

    request: EmbeddingRequest
    model: str  # the provider's own id for the model
    request_id: str = ""
    drop_params: tuple[str, ...] = ()  # what routing decided this deployment will not honour


class EmbeddingsAPI(ABC):
    """An upstream's embeddings endpoint. Raises only `ProviderError` subclasses."""

    def refusal(self, request: EmbeddingRequest, model: str) -> str | None:
        """Why this upstream cannot serve the request with this model at all (the
        deployment is then no candidate, and the reason is named if none is left)."""
        return None

    def unsupported_params(self, request: EmbeddingRequest, model: str) -> list[str]:
        """Parameters it will not honour but can answer without (dropped and named)."""
        return []

    @abstractmethod
    async def embed(self, call: EmbeddingCall) -> ProviderResponse: ...


def prompt_usage(prompt_tokens: int) -> Usage:
    """An embeddings answer's usage: input tokens only."""
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=0, total_tokens=prompt_tokens)
