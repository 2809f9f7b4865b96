"""Bedrock converse-stream events → OpenAI chat completion chunks.

messageStart → the role chunk; contentBlockStart with a toolUse → a tool call's first
delta (index, id, name); contentBlockDelta → text, reasoning or tool-argument deltas;
messageStop → the finish chunk; metadata → the closing usage-only chunk.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable

import msgspec

from providers.base import StreamChunk
from providers.bedrock.eventstream import CONVERSE_EVENTS, EventStreamDecoder
from providers.bedrock.response import finish_reason, openai_usage
from providers.bedrock.wire import (
    BedrockContentBlockDelta,
    BedrockContentBlockStart,
    BedrockContentBlockStop,
    BedrockMessageStart,
    BedrockMessageStop,
    BedrockStreamEvent,
    BedrockStreamMetadata,
)
from providers.chat_types import (
    ChatChunk,
    ChunkChoice,
    Delta,
    ToolCallDelta,
    ToolCallFunctionDelta,
    Usage,
)
from providers.errors import UpstreamProtocolError, UpstreamStreamCut

_encode = msgspec.json.encode


class StreamTranslator:
    """One answer's events, in order; `finished` once messageStop has come."""

    def __init__(
        self, *, response_id: str, model: str, created: int, json_tool: str | None, provider: str
    ) -> None:
        self._id = response_id
        self._model = model
        self._created = created
        self._json_tool = json_tool
        self._provider = provider
        self._tool_calls: dict[int, int] = {}  # content block index → tool call index
        self._json_blocks: set[int] = set()  # blocks of the JSON answer tool
        self._blocks_with_input: set[int] = set()
        self.finished = False

    def translate(self, event: BedrockStreamEvent) -> list[StreamChunk]:
        if isinstance(event, BedrockMessageStart):
            return [self._delta(Delta(role="assistant", content=""), has_output=False)]
        if isinstance(event, BedrockContentBlockStart):
            return self._block_start(event)
        if isinstance(event, BedrockContentBlockDelta):
            return self._block_delta(event)
        if isinstance(event, BedrockContentBlockStop):
            return self._block_stop(event.content_block_index)
        if isinstance(event, BedrockMessageStop):
            self.finished = True
            reason = finish_reason(
                event.stop_reason,
                answered_with_json_tool=bool(self._json_blocks) and not self._tool_calls,
                provider=self._provider,
            )
            return [self._delta(Delta(), finish_reason=reason, has_output=False)]
        assert isinstance(event, BedrockStreamMetadata)
        if event.usage is None:
            return []
        return [self._usage_chunk(openai_usage(event.usage))]

    def _block_start(self, event: BedrockContentBlockStart) -> list[StreamChunk]:
        tool = event.start.tool_use
        if tool is None:
            return []  # text and reasoning blocks start with their first delta
        block = event.content_block_index
        if tool.name == self._json_tool:
            self._json_blocks.add(block)
            return []
        index = self._tool_calls.setdefault(block, len(self._tool_calls))
        call = ToolCallDelta(
            index=index,
            id=tool.tool_use_id,
            type="function",
            function=ToolCallFunctionDelta(name=tool.name, arguments=""),
        )
        return [self._delta(Delta(tool_calls=[call]))]

    def _block_delta(self, event: BedrockContentBlockDelta) -> list[StreamChunk]:
        delta = event.delta
        block = event.content_block_index
        if delta.text:
            return [self._delta(Delta(content=delta.text))]
        if delta.tool_use is not None:
            if not delta.tool_use.input:
                return []
            self._blocks_with_input.add(block)
            return [self._arguments(block, delta.tool_use.input)]
        reasoning = delta.reasoning_content
        if reasoning is not None and reasoning.text:
            return [self._delta(Delta(reasoning_content=reasoning.text))]
        return []  # a reasoning signature, redacted reasoning, a citation: nothing to show

    def _block_stop(self, block: int) -> list[StreamChunk]:
        if block in self._blocks_with_input:
            return []
        if block in self._json_blocks or block in self._tool_calls:
            # a tool called without input: "{}" as in a complete answer, not "" (no JSON)
            return [self._arguments(block, "{}")]
        return []

    def _arguments(self, block: int, text: str) -> StreamChunk:
        if block in self._json_blocks:
            return self._delta(Delta(content=text))  # the JSON answer is the content
        index = self._tool_calls.get(block)
        if index is None:
            raise UpstreamProtocolError(
                f"{self._provider} streamed tool input for block {block}, which is not a tool call",
                provider=self._provider,
            )
        call = ToolCallDelta(index=index, function=ToolCallFunctionDelta(arguments=text))
        return self._delta(Delta(tool_calls=[call]))

    def _delta(
        self, delta: Delta, *, finish_reason: str | None = None, has_output: bool = True
    ) -> StreamChunk:
        chunk = ChatChunk(
            id=self._id,
            created=self._created,
            model=self._model,
            choices=[ChunkChoice(index=0, delta=delta, finish_reason=finish_reason)],
        )
        return StreamChunk(data=_encode(chunk), has_output=has_output)

    def _usage_chunk(self, usage: Usage) -> StreamChunk:
        chunk = ChatChunk(
            id=self._id, created=self._created, model=self._model, choices=[], usage=usage
        )
        return StreamChunk(data=_encode(chunk), usage=usage, usage_only=True)


async def openai_chunks(
    blocks: AsyncIterable[bytes], translator: StreamTranslator, provider: str
) -> AsyncGenerator[StreamChunk, None]:
    """The chunks of a converse-stream body, read as its blocks arrive."""
    decoder = EventStreamDecoder(provider, CONVERSE_EVENTS)
    async for block in blocks:
        chunks = [chunk for event in decoder.feed(block) for chunk in translator.translate(event)]
        for position, chunk in enumerate(chunks):
            # the rest of this block's chunks are ready: the gateway may send them together
            chunk.more_buffered = position < len(chunks) - 1
            yield chunk
        if decoder.failure is not None:
            raise decoder.failure
    if not translator.finished or decoder.mid_frame:
        raise UpstreamStreamCut(
            f"{provider} ended the stream before it was complete", provider=provider
        )
