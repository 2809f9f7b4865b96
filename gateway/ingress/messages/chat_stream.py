"""Chat completion chunks (what a translated deployment streams) → the Messages API
event sequence.

`message_start`, then content blocks in order, each opened (`content_block_start`),
filled (`text_delta`, `thinking_delta`, `input_json_delta`) and closed
(`content_block_stop`; a thinking block ends with an empty `signature_delta`, as it has
none), a `ping` after the first block opens, as Anthropic sends it; at the end one
`message_delta` with the stop reason and the usage, and the closing `message_stop`.
Chat interleaves what Messages keeps in blocks: a switch from reasoning to text, or to
another tool call, closes the open block and opens the next (streaming guide, "Event
types"; the anthropic SDK's stream accumulator reads blocks by `index`).

One chat chunk becomes one stream chunk (its events framed together), with the chunk's
usage and output flags, so routing counts and prices the stream as it would the chat
stream. The usage the end reports is the upstream's, or the same estimate routing makes
(`routing.usage_estimate`) when the upstream sent none.
"""

from __future__ import annotations

import msgspec
from msgspec import Raw

from gateway.ingress.messages.from_chat import message_id, stop_reason, usage_out
from gateway.ingress.messages.wire import (
    MESSAGE_STOP,
    PING,
    BlockDeltaOut,
    BlockStartOut,
    BlockStopOut,
    ContentOut,
    MessageDeltaOut,
    MessageOut,
    MessageStartOut,
    SignatureDeltaOut,
    StopOut,
    TextOut,
    ThinkingOut,
    ToolUseOut,
    UsageOut,
)
from providers.anthropic.relay import sse_frame
from providers.anthropic.request import tool_use_id
from providers.base import StreamChunk
from providers.chat_types import Usage
from providers.errors import UpstreamProtocolError
from providers.openai.wire import ChunkChoiceView, DeltaView
from routing.usage_estimate import estimated_usage

_encode = msgspec.json.encode
_EMPTY_INPUT = Raw(b"{}")


class _FunctionDeltaView(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class _ToolCallDeltaView(msgspec.Struct):
    index: int = 0
    id: str | None = None
    function: _FunctionDeltaView | None = None


class _TextPartView(msgspec.Struct):
    type: str | None = None
    text: str | None = None


class _ChunkView(msgspec.Struct):
    id: str = ""
    model: str = ""
    choices: list[ChunkChoiceView] | None = None


_chunk_decoder = msgspec.json.Decoder(_ChunkView)
_tool_call_decoder = msgspec.json.Decoder(_ToolCallDeltaView)
_part_decoder = msgspec.json.Decoder(_TextPartView)


class ChatToMessages:
    def __init__(self, *, prompt_tokens: int, provider: str, request_id: str) -> None:
        """`prompt_tokens`: the plan's estimate (the usage of an upstream that counts
        none)."""
        self._prompt_tokens = prompt_tokens
        self._provider = provider
        self._request_id = request_id
        self._started = False
        self._pinged = False
        self._blocks = 0  # blocks opened so far: the next one's index
        self._open: int | None = None  # the open block's index
        self._open_kind = ""  # text, thinking or tool
        self._tools: dict[int, int] = {}  # chat tool call index → block index
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._outputs = 0  # chunks that carried output (the estimate's completion count)

    def feed(self, chunk: StreamChunk) -> StreamChunk:
        """The events one chat chunk becomes, as one chunk (its data may be empty)."""
        try:
            view = _chunk_decoder.decode(chunk.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamProtocolError(
                f"{self._provider} sent a chunk that is not a chat chunk: {exc}",
                provider=self._provider,
            ) from exc
        if chunk.usage is not None:
            self._usage = chunk.usage
        if chunk.has_output:
            self._outputs += 1
        choices, open_index = view.choices, self._open
        if choices and open_index is not None and self._open_kind == "text":
            choice = choices[0]
            delta = choice.delta
            if delta is not None:
                text = delta.content
                if (
                    type(text) is str
                    and text
                    and not (delta.reasoning_content or delta.reasoning or delta.tool_calls)
                ):
                    # most chunks: more text for the open text block, one event built
                    # here without the general path's calls (its CPU is per chunk)
                    if choice.finish_reason:
                        self._finish = choice.finish_reason
                    chunk.data = b"%b%d%b%b}}\n\n" % (
                        _DELTA_HEAD,
                        open_index,
                        b',"delta":{"type":"text_delta","text":',
                        _encode(text),
                    )
                    chunk.usage_only = False
                    return chunk
        frames: list[bytes] = []
        if not self._started:
            self._started = True
            frames.append(self._message_start(view))
        for choice in (choices or [])[:1]:  # one answer: Messages has no `n`
            if choice.delta is not None:
                self._delta(choice.delta, frames)
            if choice.finish_reason:
                self._finish = choice.finish_reason
        # the chunk itself carries its events on: its usage and flags stay as they were
        chunk.data = b"".join(frames)
        chunk.usage_only = False
        return chunk

    def finish(self) -> list[StreamChunk]:
        """The end of the message, once the chat stream has ended."""
        frames: list[bytes] = []
        self._close(frames)
        usage = self._usage or estimated_usage(self._prompt_tokens, completion_tokens=self._outputs)
        reason = stop_reason(self._finish, called_tools=bool(self._tools))
        frames.append(_event(MessageDeltaOut(StopOut(stop_reason=reason), usage_out(usage))))
        return [
            StreamChunk(data=b"".join(frames)),
            StreamChunk(data=MESSAGE_STOP, usage_only=True),
        ]

    # --- events -----------------------------------------------------------------------

    def _message_start(self, view: _ChunkView) -> bytes:
        message = MessageOut(
            id=message_id(view.id, self._request_id),
            model=view.model,
            content=[],
            stop_reason=None,
            # an estimate until the end's `message_delta` carries the count
            usage=UsageOut(input_tokens=self._prompt_tokens, output_tokens=0),
        )
        return _event(MessageStartOut(message))

    def _delta(self, delta: DeltaView, frames: list[bytes]) -> None:
        reasoning = delta.reasoning_content or delta.reasoning
        if reasoning:
            index = self._block("thinking", ThinkingOut(thinking=""), frames)
            frames.append(_delta_event(index, b"thinking_delta", b"thinking", reasoning))
        text = _text(delta.content) or delta.refusal
        if text:
            index = self._block("text", TextOut(text=""), frames)
            frames.append(_delta_event(index, b"text_delta", b"text", text))
        for raw in delta.tool_calls or []:
            try:
                call = _tool_call_decoder.decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise UpstreamProtocolError(
                    f"{self._provider} streamed a tool call that is not one: {exc}",
                    provider=self._provider,
                ) from exc
            self._tool_delta(call, frames)

    def _tool_delta(self, call: _ToolCallDeltaView, frames: list[bytes]) -> None:
        function = call.function or _FunctionDeltaView()
        index = self._tools.get(call.index)
        if index is None:
            # a new call; chat streams them one after the other, as Messages has them
            self._close(frames)
            index = self._tools[call.index] = self._open_block("tool", frames)
            block = ToolUseOut(
                id=tool_use_id(call.id) if call.id else f"toolu_{self._request_id}_{index}",
                name=function.name or "",
                input=_EMPTY_INPUT,
            )
            frames.append(_event(BlockStartOut(index, block)))
            self._after_first_start(frames)
        if function.arguments:
            frames.append(
                _delta_event(index, b"input_json_delta", b"partial_json", function.arguments)
            )

    def _block(self, kind: str, opening: ContentOut, frames: list[bytes]) -> int:
        """The open block of this kind, else a new one after closing the open one."""
        if self._open is not None and self._open_kind == kind:
            return self._open
        self._close(frames)
        index = self._open_block(kind, frames)
        frames.append(_event(BlockStartOut(index, opening)))
        self._after_first_start(frames)
        return index

    def _open_block(self, kind: str, frames: list[bytes]) -> int:
        index = self._blocks
        self._blocks += 1
        self._open, self._open_kind = index, kind
        return index

    def _after_first_start(self, frames: list[bytes]) -> None:
        if not self._pinged:
            self._pinged = True
            frames.append(sse_frame("ping", PING))

    def _close(self, frames: list[bytes]) -> None:
        if self._open is None:
            return
        if self._open_kind == "thinking":
            frames.append(_event(BlockDeltaOut(self._open, SignatureDeltaOut(""))))
        frames.append(_event(BlockStopOut(self._open)))
        self._open = None
        self._open_kind = ""


def _frame_head(event: type[msgspec.Struct]) -> bytes:
    tag = event.__struct_config__.tag
    assert isinstance(tag, str)
    return sse_frame(tag, b"")[:-2]  # `event: <tag>\ndata: `


_HEADS: dict[type[msgspec.Struct], bytes] = {
    event: _frame_head(event)
    for event in (MessageStartOut, BlockStartOut, BlockDeltaOut, BlockStopOut, MessageDeltaOut)
}
_DELTA_HEAD = _HEADS[BlockDeltaOut] + b'{"type":"content_block_delta","index":'


def _event(event: msgspec.Struct) -> bytes:
    # msgspec writes JSON on one line (a newline in a string is escaped): one `data:` line
    return _HEADS[type(event)] + _encode(event) + b"\n\n"


def _delta_event(index: int, kind: bytes, field: bytes, value: str) -> bytes:
    """A `content_block_delta` event, the bytes `_event` would write for it, built
    directly: it is most of a stream's events."""
    return (
        _DELTA_HEAD + str(index).encode() + b',"delta":{"type":"' + kind + b'","' + field
        + b'":' + _encode(value) + b"}}\n\n"
    )  # fmt: skip


def _text(content: str | list[Raw] | None) -> str:
    if not isinstance(content, list):
        return content or ""
    parts = (_part_decoder.decode(raw) for raw in content)
    return "".join(part.text or "" for part in parts if part.type == "text")
