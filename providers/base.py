"""The provider adapter interface: one non-streaming call and one stream of chunks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

import msgspec

from providers.capabilities import Capabilities, droppable_unsupported
from providers.chat_types import ChatRequest, Usage

if TYPE_CHECKING:
    from providers.completions import CompletionsAPI
    from providers.embeddings import EmbeddingsAPI
    from providers.openai.responses import ResponsesAPI


class ProviderCall(msgspec.Struct, kw_only=True):
    """One attempt at one deployment."""

    request: ChatRequest
    model: str  # the provider's own id for the model
    request_id: str = ""
    # request parameters routing decided this deployment will not honour: adapters leave
    # them out of the upstream body (see `Provider.unsupported_params`)
    drop_params: tuple[str, ...] = ()


class ProviderResponse(msgspec.Struct, kw_only=True):
    """A complete answer; `body` is an OpenAI `chat.completion` JSON object."""

    body: bytes
    usage: Usage | None = None


class StreamChunk(msgspec.Struct, kw_only=True):
    """One OpenAI `chat.completion.chunk` JSON object (on one line: the gateway frames it
    as a single `data:` line) and what routing needs to know of it."""

    data: bytes
    usage: Usage | None = None
    has_output: bool = False  # carries generated content (the first one marks TTFT)
    usage_only: bool = False  # `choices: []` with usage: the stream's closing chunk
    # more chunks are already received: the gateway may send this one together with them
    # (one write instead of many for a burst) without delaying anything
    more_buffered: bool = False


class Provider(ABC):
    """An upstream API. Adapters raise only `ProviderError` subclasses."""

    # what this API can do for any model; the model catalogue and config refine it
    capabilities: Capabilities = Capabilities()
    # operations beside chat, where the upstream API has them (None: it has not)
    embeddings: EmbeddingsAPI | None = None
    responses: ResponsesAPI | None = None  # OpenAI's Responses API (OpenAI, Azure)
    legacy_completions: CompletionsAPI | None = None  # POST /v1/completions

    def __init__(self, name: str) -> None:
        self.name = name

    def capabilities_for(self, model: str) -> Capabilities:
        """What this API can do for one of its models, before the catalogue and config
        refine it; adapters whose abilities differ by model family override it."""
        return self.capabilities

    def unsupported_params(self, request: ChatRequest, capabilities: Capabilities) -> list[str]:
        """Request parameters this upstream will not honour (dropped from what it is sent
        and named to the client). Adapters add what their API has no field for."""
        return droppable_unsupported(request, capabilities)

    @abstractmethod
    async def complete(self, call: ProviderCall) -> ProviderResponse: ...

    @abstractmethod
    def stream(self, call: ProviderCall) -> AsyncGenerator[StreamChunk, None]:
        """Yield chunks; closing the iterator early must close the upstream request."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook; in-process providers hold nothing
        """Release pooled connections."""
