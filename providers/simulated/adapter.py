"""A provider that answers in-process, through the same interface as a real one.

It is the embedded default for `make run`, demos and benchmarks: no keys, no network,
yet its answers have realistic timing (TTFT, tokens per second), token counts, prices
(set on the deployment like any other) and failures, and they honour what clients test
with (tools, JSON output, token limits: see `replies.py`) on every endpoint (chat,
legacy completions, embeddings).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator

import msgspec
from msgspec import UNSET

from providers.base import Provider, ProviderCall, ProviderResponse, StreamChunk
from providers.chat_types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Choice,
    ChunkChoice,
    CompletionTokensDetails,
    Delta,
    PromptTokensDetails,
    ResponseMessage,
    ToolCallDelta,
    ToolCallFunctionDelta,
    Usage,
)
from providers.errors import error_for_status
from providers.simulated.completions import SimulatedCompletions
from providers.simulated.config import SimulatedConfig
from providers.simulated.embeddings import SimulatedEmbeddings
from providers.simulated.replies import Reply, reply_for

_encode = msgspec.json.encode


class SimulatedProvider(Provider):
    def __init__(self, name: str, config: SimulatedConfig) -> None:
        super().__init__(name)
        self._config = config
        self._random = random.Random(config.seed)
        self._words = config.text.split() or ["token"]
        self.embeddings = SimulatedEmbeddings(config.embedding_dimensions, self._first_byte)
        self.legacy_completions = SimulatedCompletions(config, self._first_byte)

    async def _first_byte(self) -> None:
        """The wait before an answer starts, and the configured share of failures."""
        await self._sleep_ms(self._config.ttft_ms)
        self._maybe_fail()

    def _maybe_fail(self) -> None:
        if self._config.failure_rate and self._random.random() < self._config.failure_rate:
            status = self._config.failure_status
            raise error_for_status(
                status, f"{self.name}: simulated failure (HTTP {status})", provider=self.name
            )

    def _usage(self, request: ChatRequest, completion_tokens: int) -> Usage:
        prompt_tokens = request.estimated_prompt_tokens()
        return Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=0),
            completion_tokens_details=CompletionTokensDetails(reasoning_tokens=0),
        )

    async def _sleep_ms(self, ms: float) -> None:
        if ms > 0:
            await asyncio.sleep(ms / 1000)

    def _reply(self, call: ProviderCall) -> Reply:
        call_id = f"call_{call.request_id or 'sim'}"
        config = self._config
        return reply_for(call.request, config.text, config.completion_tokens, call_id)

    async def complete(self, call: ProviderCall) -> ProviderResponse:
        await self._first_byte()
        reply = self._reply(call)
        if self._config.tokens_per_second:
            await asyncio.sleep(len(reply.pieces) / self._config.tokens_per_second)
        usage = self._usage(call.request, len(reply.pieces))
        message = ResponseMessage(
            content=reply.content,
            tool_calls=[reply.tool_call] if reply.tool_call is not None else UNSET,
        )
        response = ChatResponse(
            id=f"chatcmpl-sim-{call.request_id}",
            created=int(time.time()),
            model=call.model,
            choices=[Choice(index=0, message=message, finish_reason=reply.finish_reason)],
            usage=usage,
            system_fingerprint=None,
        )
        return ProviderResponse(body=_encode(response), usage=usage)

    async def stream(self, call: ProviderCall) -> AsyncGenerator[StreamChunk, None]:
        await self._first_byte()
        reply = self._reply(call)
        chunk_id = f"chatcmpl-sim-{call.request_id}"
        created = int(time.time())

        def chunk(delta: Delta, finish_reason: str | None = None) -> bytes:
            choice = ChunkChoice(index=0, delta=delta, finish_reason=finish_reason)
            return _encode(
                ChatChunk(id=chunk_id, created=created, model=call.model, choices=[choice])
            )

        tool_call = reply.tool_call
        if tool_call is None:
            yield StreamChunk(data=chunk(Delta(role="assistant", content="")))
            deltas = [Delta(content=piece) for piece in reply.pieces]
        else:
            # as OpenAI streams a call: its id and name first, then the arguments in pieces
            opening = ToolCallDelta(
                index=0,
                id=tool_call.id,
                type="function",
                function=ToolCallFunctionDelta(name=tool_call.function.name, arguments=""),
            )
            yield StreamChunk(
                data=chunk(Delta(role="assistant", content=None, tool_calls=[opening])),
                has_output=True,
            )
            deltas = [
                Delta(
                    tool_calls=[
                        ToolCallDelta(index=0, function=ToolCallFunctionDelta(arguments=piece))
                    ]
                )
                for piece in reply.pieces
            ]
        interval = 1 / self._config.tokens_per_second if self._config.tokens_per_second else 0.0
        for delta in deltas:
            if interval:
                await asyncio.sleep(interval)
            yield StreamChunk(data=chunk(delta), has_output=True)
        yield StreamChunk(data=chunk(Delta(), reply.finish_reason))
        usage = self._usage(call.request, len(reply.pieces))
        closing = ChatChunk(id=chunk_id, created=created, model=call.model, choices=[], usage=usage)
        yield StreamChunk(data=_encode(closing), usage=usage, usage_only=True)
