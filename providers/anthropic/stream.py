"""Anthropic stream events → OpenAI chat completion chunks.

Anthropic streams content blocks (text, thinking, tool_use…), each opened, filled by
deltas and closed, indexed by their position in the message. OpenAI streams one flat
delta per chunk, and indexes tool calls by their position among tool calls only: the
translator keeps, per open block, what it becomes on the OpenAI side.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from providers.anthropic.errors import classify_error
from providers.anthropic.response import finish_reason, merge_usage, openai_usage
from providers.anthropic.wire import (
    AnthropicResponseBlock,
    AnthropicStreamEvent,
    AnthropicUsage,
    stream_event_decoder,
)
from providers.base import StreamChunk
from providers.chat_types import (
    ChatChunk,
    ChunkChoice,
    Delta,
    ToolCallDelta,
    ToolCallFunctionDelta,
)
from providers.errors import UpstreamProtocolError

# what an Anthropic content block becomes: text, reasoning text, an OpenAI tool call,
# the schema tool's input (streamed as text), or nothing
BlockKind = Literal["text", "thinking", "tool", "json", "ignored"]

_encode = msgspec.json.encode


class _OpenBlock(msgspec.Struct):
    kind: BlockKind
    tool_index: int = 0  # position among the tool calls, for kind "tool"
    has_input: bool = False  # some of a tool's input JSON has been streamed


class AnthropicStreamTranslator:
    def __init__(self, *, provider: str, json_tool: str | None, created: int) -> None:
        self._provider = provider
        self._json_tool = json_tool
        self._created = created
        self._id = ""
        self._model = ""
        self._started = False
        self._blocks: dict[int, _OpenBlock] = {}
        self._tool_calls = 0
        self._usage = AnthropicUsage()
        self._stop_reason: str | None = None
        self.finished = False  # `message_stop` arrived: the answer is complete

    def feed(self, data: bytes) -> list[StreamChunk]:
        """The chunks one event's data becomes (often none)."""
        try:
            event = stream_event_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamProtocolError(
                f"{self._provider} sent a stream event that is not Anthropic's: {exc}",
                provider=self._provider,
            ) from exc
        kind = event.type
        if kind == "error":
            detail = event.error
            raise classify_error(
                detail.type if detail else None,
                detail.message if detail else None,
                provider=self._provider,
            )
        if kind == "message_start":
            return self._start(event)
        if kind == "ping":
            return []
        if not self._started:
            raise UpstreamProtocolError(
                f"{self._provider} sent {kind!r} before message_start", provider=self._provider
            )
        if kind == "content_block_start":
            return self._block_start(event)
        if kind == "content_block_delta":
            return self._block_delta(event)
        if kind == "message_delta":
            if event.delta is not None and event.delta.stop_reason is not None:
                self._stop_reason = event.delta.stop_reason
            if event.usage is not None:
                self._add_usage(event.usage)
            return []
        if kind == "message_stop":
            return self._finish()
        if kind == "content_block_stop":
            return self._block_stop(event)
        return []  # event types added after this was written

    # --- events -----------------------------------------------------------------------

    def _start(self, event: AnthropicStreamEvent) -> list[StreamChunk]:
        message = event.message
        if message is None:
            raise UpstreamProtocolError(
                f"{self._provider} sent message_start without a message", provider=self._provider
            )
        self._started = True
        self._id, self._model = message.id, message.model
        if message.usage is not None:
            self._add_usage(message.usage)
        return [self._chunk(Delta(role="assistant", content=""))]

    def _block_start(self, event: AnthropicStreamEvent) -> list[StreamChunk]:
        block = event.content_block or AnthropicResponseBlock(type="")
        opened = self._open(block)
        self._blocks[event.index or 0] = opened
        if opened.kind == "tool":
            call = ToolCallDelta(
                index=opened.tool_index,
                id=block.id or "",
                type="function",
                function=ToolCallFunctionDelta(name=block.name or "", arguments=""),
            )
            return [self._chunk(Delta(tool_calls=[call]), has_output=True)]
        # text and thinking blocks open empty; anything they already hold is output
        if opened.kind == "text" and block.text:
            return [self._chunk(Delta(content=block.text), has_output=True)]
        if opened.kind == "thinking" and block.thinking:
            return [self._chunk(Delta(reasoning_content=block.thinking), has_output=True)]
        return []

    def _open(self, block: AnthropicResponseBlock) -> _OpenBlock:
        if block.type == "tool_use" and block.name == self._json_tool:
            return _OpenBlock("json")
        if block.type == "tool_use":
            self._tool_calls += 1
            return _OpenBlock("tool", self._tool_calls - 1)
        if block.type in ("text", "thinking"):
            return _OpenBlock("text" if block.type == "text" else "thinking")
        return _OpenBlock("ignored")  # redacted_thinking, server tools, …

    def _block_delta(self, event: AnthropicStreamEvent) -> list[StreamChunk]:
        delta = event.delta
        block = self._blocks.get(event.index or 0)
        if delta is None or block is None:
            raise UpstreamProtocolError(
                f"{self._provider} sent a delta for a block it did not open",
                provider=self._provider,
            )
        if delta.type == "text_delta" and delta.text:
            return [self._chunk(Delta(content=delta.text), has_output=True)]
        if delta.type == "thinking_delta" and delta.thinking:
            return [self._chunk(Delta(reasoning_content=delta.thinking), has_output=True)]
        if delta.type == "input_json_delta" and delta.partial_json:
            block.has_input = True
            return self._input(block, delta.partial_json)
        # signature_delta (the thinking block's seal), citations_delta: no counterpart
        return []

    def _block_stop(self, event: AnthropicStreamEvent) -> list[StreamChunk]:
        block = self._blocks.get(event.index or 0)
        if block is None or block.has_input:
            return []
        # a tool called without input streams only `""`: clients parse the arguments as
        # JSON, so they get "{}", as in a complete answer
        return self._input(block, "{}")

    def _input(self, block: _OpenBlock, partial_json: str) -> list[StreamChunk]:
        if block.kind == "json":
            return [self._chunk(Delta(content=partial_json), has_output=True)]
        if block.kind == "tool":
            arguments = ToolCallFunctionDelta(arguments=partial_json)
            call = ToolCallDelta(index=block.tool_index, function=arguments)
            return [self._chunk(Delta(tool_calls=[call]), has_output=True)]
        return []

    def _finish(self) -> list[StreamChunk]:
        self.finished = True
        reason = finish_reason(self._stop_reason, called_tools=self._tool_calls > 0)
        usage = openai_usage(self._usage)
        closing = ChatChunk(
            id=self._id, created=self._created, model=self._model, choices=[], usage=usage
        )
        return [
            self._chunk(Delta(), finish_reason=reason),
            StreamChunk(data=_encode(closing), usage=usage, usage_only=True),
        ]

    # --- helpers ----------------------------------------------------------------------

    def _add_usage(self, update: AnthropicUsage) -> None:
        merge_usage(self._usage, update)

    def _chunk(
        self, delta: Delta, *, finish_reason: str | None = None, has_output: bool = False
    ) -> StreamChunk:
        choice = ChunkChoice(index=0, delta=delta, finish_reason=finish_reason)
        chunk = ChatChunk(id=self._id, created=self._created, model=self._model, choices=[choice])
        return StreamChunk(data=_encode(chunk), has_output=has_output)
