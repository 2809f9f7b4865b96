"""Chat chunks in, the Responses event stream out.

Each event leaves as one `StreamChunk` whose `data` is its whole SSE frame (`event:` and
`data:` lines), numbered by `sequence_number` in the order sent, in the sequence
OpenAI's own streams follow: `response.created`, `response.in_progress`, then per output
item `output_item.added`, its parts opened, its deltas, its parts closed,
`output_item.done`, and last `response.completed` (or `response.incomplete` when the
answer was cut short). An item is closed when an item of another kind begins, as the
model's reasoning ends before its text and its text before its function calls.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from gateway.ingress.responses.from_chat import (
    ChoiceView,
    Echo,
    FunctionView,
    ItemIds,
    MessageView,
    ToolCallView,
    ending,
    reasoning_item,
    responses_usage,
)
from gateway.ingress.responses.wire import (
    ArgumentsDeltaEvent,
    ArgumentsDoneEvent,
    ItemAddedEvent,
    ItemDoneEvent,
    ItemStatus,
    OutputContent,
    OutputFunctionCall,
    OutputItem,
    OutputMessage,
    OutputReasoning,
    OutputRefusal,
    OutputText,
    PartAddedEvent,
    PartDoneEvent,
    ReasoningText,
    ReasoningTextDeltaEvent,
    ReasoningTextDoneEvent,
    RefusalDeltaEvent,
    RefusalDoneEvent,
    StreamEvent,
    SummaryPartAddedEvent,
    SummaryPartDoneEvent,
    SummaryText,
    SummaryTextDeltaEvent,
    SummaryTextDoneEvent,
    TextDoneEvent,
)
from providers.base import StreamChunk
from providers.chat_types import Usage

_encode = msgspec.json.encode


class _ChunkView(msgspec.Struct):
    model: str | None = None
    choices: list[ChoiceView] = []


_chunk_view = msgspec.json.Decoder(_ChunkView)
_EVENT_TYPES: dict[type[Any], bytes] = {
    cls: cls.__struct_config__.tag.encode() for cls in StreamEvent.__args__
}


def frame(event: StreamEvent) -> bytes:
    return b"event: " + _EVENT_TYPES[type(event)] + b"\ndata: " + _encode(event) + b"\n\n"


class _Reasoning:
    def __init__(self, index: int, item_id: str) -> None:
        self.index, self.id, self.text = index, item_id, ""


class _Message:
    def __init__(self, index: int, item_id: str) -> None:
        self.index, self.id = index, item_id
        self.parts: list[OutputContent] = []  # the last one is the part being written
        self.text_delta = b""  # the text part's delta frame between its number and its text


# A text delta is most of a stream's events: framed straight into bytes, in the order and
# form msgspec encodes TextDeltaEvent (tests/test_responses_translation.py checks both
# agree), which saves building and encoding a Struct per chunk.
_TEXT_DELTA_HEAD = (
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
    b'"sequence_number":'
)
_TEXT_DELTA_TAIL = b',"logprobs":[]}\n\n'


def text_delta_middle(item_id: str, output_index: int, content_index: int) -> bytes:
    return (
        b',"item_id":'
        + _encode(item_id)
        + b',"output_index":'
        + str(output_index).encode()
        + b',"content_index":'
        + str(content_index).encode()
        + b',"delta":'
    )


def text_delta_frame(sequence: int, middle: bytes, text: str) -> bytes:
    return _TEXT_DELTA_HEAD + str(sequence).encode() + middle + _encode(text) + _TEXT_DELTA_TAIL


class ClosingChunk(StreamChunk, kw_only=True):
    """A translated stream's closing event, with its parts: the frame up to the
    response, the response, and its `output`."""

    head: bytes
    response: bytes
    output: bytes


def opening_frame(event: bytes, sequence: int, response: bytes) -> bytes:
    """`response.created` or `response.in_progress` with its encoded response."""
    return b'event: %b\ndata: {"type":"%b","sequence_number":%d,"response":%b}\n\n' % (
        event,
        event,
        sequence,
        response,
    )


class _Call:
    def __init__(self, index: int, item_id: str, call_id: str, name: str) -> None:
        self.index, self.id, self.call_id, self.name = index, item_id, call_id, name
        self.arguments = ""


class StreamTranslator:
    """One translated stream. `summary`: the client asked for a reasoning summary, so
    the model's reasoning goes out as one (else as raw reasoning text)."""

    def __init__(
        self, echo: Echo, response_id: str, model: str, *, summary: bool, created_at: int = 0
    ) -> None:
        self._echo = echo
        self._id = response_id
        self._model = model
        self._summary = summary
        self._created_at = created_at or int(time.time())
        self._ids = ItemIds()
        self._sequence = 0
        self._out: list[StreamChunk] = []
        self._items: list[OutputItem | None] = []  # by output index; None while open
        self._reasoning: _Reasoning | None = None
        self._message: _Message | None = None
        self._calls: dict[int, _Call] = {}  # by the chat tool call's index
        self._finish_reason: str | None = None
        self._usage: Usage | None = None
        self._started = False

    # --- chunks in -----------------------------------------------------------------

    def feed(self, chunk: StreamChunk) -> list[StreamChunk]:
        """The events one chat chunk makes (none for some)."""
        if chunk.usage is not None:
            self._usage = chunk.usage
        view = _chunk_view.decode(chunk.data)
        if not self._started:
            self._start(view.model)
        if view.choices:
            choice = view.choices[0]
            delta = choice.delta
            if delta is not None:
                message = self._message
                text = delta.content
                if (
                    message is not None
                    and message.text_delta  # the part being written is text
                    and type(text) is str
                    and text
                    and not (delta.reasoning_content or delta.reasoning or delta.refusal)
                    and not delta.tool_calls
                ):
                    # most chunks: more text for the open text part, one event, built
                    # here without the general path's calls (its CPU is per chunk)
                    part = message.parts[-1]
                    assert isinstance(part, OutputText)
                    part.text += text
                    sequence = self._sequence
                    self._sequence = sequence + 1
                    data = b"%b%d%b%b%b" % (
                        _TEXT_DELTA_HEAD,
                        sequence,
                        message.text_delta,
                        _encode(text),
                        _TEXT_DELTA_TAIL,
                    )
                    if choice.finish_reason:
                        self._finish_reason = choice.finish_reason
                    out, self._out = self._out, []
                    more = chunk.more_buffered
                    out.append(StreamChunk(data=data, has_output=True, more_buffered=more))
                    return out
                self._delta(delta)
            if choice.finish_reason:
                self._finish_reason = choice.finish_reason
        return self._flush(chunk.more_buffered)

    def finish(self) -> list[StreamChunk]:
        """After the chat stream's end: the last items closed, then the closing event,
        marked `usage_only` (it carries the usage; the gateway adds `routing_metadata`)."""
        if not self._started:
            self._start(None)
        self._close_all()
        status, incomplete = ending(self._finish_reason)
        response = self._echo.response(
            self._id,
            self._created_at,
            self._model,
            status,
            [item for item in self._items if item is not None],
            usage=responses_usage(self._usage) if self._usage is not None else None,
            incomplete=incomplete,
        )
        event = b"response.completed" if status == "completed" else b"response.incomplete"
        # framed as msgspec frames the event (the response is its last field), and the
        # parts kept, so the gateway splices `routing_metadata` in without decoding it
        head = opening_frame(event, self._next(), b"")[:-3]
        body = _encode(response)
        chunks = self._flush(False)
        closing = ClosingChunk(
            data=head + body + b"}\n\n",
            usage=self._usage,
            usage_only=True,
            head=head,
            response=body,
            output=_encode(response.output),
        )
        chunks.append(closing)
        return chunks

    # --- events out ----------------------------------------------------------------

    def _next(self) -> int:
        sequence = self._sequence
        self._sequence += 1
        return sequence

    def _emit(self, event: StreamEvent, *, output: bool = False) -> None:
        self._out.append(StreamChunk(data=frame(event), has_output=output, more_buffered=True))

    def _flush(self, more_buffered: bool) -> list[StreamChunk]:
        out, self._out = self._out, []
        if out:
            out[-1].more_buffered = more_buffered
        return out

    def _start(self, model: str | None) -> None:
        self._started = True
        self._model = model or self._model
        response = self._echo.response(self._id, self._created_at, self._model, "in_progress", [])
        # both events carry the same response: encoded once, framed as msgspec would
        # frame each event (tests/test_responses_translation.py checks they agree)
        body = _encode(response)
        for event in (b"response.created", b"response.in_progress"):
            frame_ = opening_frame(event, self._next(), body)
            self._out.append(StreamChunk(data=frame_, more_buffered=True))

    def _open(self, item: OutputItem) -> int:
        index = len(self._items)
        self._items.append(None)
        self._emit(ItemAddedEvent(sequence_number=self._next(), output_index=index, item=item))
        return index

    def _done(self, index: int, item: OutputItem) -> None:
        self._items[index] = item
        self._emit(ItemDoneEvent(sequence_number=self._next(), output_index=index, item=item))

    # --- a delta -------------------------------------------------------------------

    def _delta(self, delta: MessageView) -> None:
        content = delta.content
        if type(content) is str and not (delta.reasoning_content or delta.reasoning):
            text, reasoning = content, ""  # the common chunk: text only
        else:
            text, reasoning = delta.text_and_reasoning()
        if reasoning:
            self._reason(reasoning)
        if text:
            self._write(text, refusal=False)
        if delta.refusal:
            self._write(delta.refusal, refusal=True)
        for call in delta.tool_calls or ():
            self._call(call)

    def _reason(self, text: str) -> None:
        current = self._reasoning
        if current is None:
            self._close_message()
            self._close_calls()
            item_id = self._ids("rs")
            index = self._open(OutputReasoning(id=item_id, summary=[]))
            current = self._reasoning = _Reasoning(index, item_id)
            if self._summary:
                self._emit(
                    SummaryPartAddedEvent(
                        sequence_number=self._next(),
                        item_id=item_id,
                        output_index=index,
                        summary_index=0,
                        part=SummaryText(text=""),
                    )
                )
            else:
                self._emit(
                    PartAddedEvent(
                        sequence_number=self._next(),
                        item_id=item_id,
                        output_index=index,
                        content_index=0,
                        part=ReasoningText(text=""),
                    )
                )
        current.text += text
        if self._summary:
            event: StreamEvent = SummaryTextDeltaEvent(
                sequence_number=self._next(),
                item_id=current.id,
                output_index=current.index,
                summary_index=0,
                delta=text,
            )
        else:
            event = ReasoningTextDeltaEvent(
                sequence_number=self._next(),
                item_id=current.id,
                output_index=current.index,
                content_index=0,
                delta=text,
            )
        self._emit(event, output=True)

    def _write(self, text: str, *, refusal: bool) -> None:
        message = self._message
        if message is not None and not refusal and message.text_delta:
            current = message.parts[-1]
            if isinstance(current, OutputText):  # more text for the part being written
                current.text += text
                data = text_delta_frame(self._next(), message.text_delta, text)
                self._out.append(StreamChunk(data=data, has_output=True, more_buffered=True))
                return
        if message is None:
            self._close_reasoning()
            self._close_calls()
            item_id = self._ids("msg")
            item = OutputMessage(id=item_id, status="in_progress", content=[])
            message = self._message = _Message(self._open(item), item_id)
        parts = message.parts
        kind = OutputRefusal if refusal else OutputText
        if not parts or not isinstance(parts[-1], kind):
            if parts:
                self._close_part(message)
            part: OutputContent = OutputRefusal(refusal="") if refusal else OutputText(text="")
            parts.append(part)
            message.text_delta = (
                b"" if refusal else text_delta_middle(message.id, message.index, len(parts) - 1)
            )
            self._emit(
                PartAddedEvent(
                    sequence_number=self._next(),
                    item_id=message.id,
                    output_index=message.index,
                    content_index=len(parts) - 1,
                    part=part,
                )
            )
        current = parts[-1]
        if isinstance(current, OutputRefusal):
            current.refusal += text
            event: StreamEvent = RefusalDeltaEvent(
                sequence_number=self._next(),
                item_id=message.id,
                output_index=message.index,
                content_index=len(parts) - 1,
                delta=text,
            )
        else:
            current.text += text
            data = text_delta_frame(self._next(), message.text_delta, text)
            self._out.append(StreamChunk(data=data, has_output=True, more_buffered=True))
            return
        self._emit(event, output=True)

    def _call(self, delta: ToolCallView) -> None:
        call = self._calls.get(delta.index)
        function = delta.function or FunctionView()
        if call is None:
            self._close_reasoning()
            self._close_message()
            item_id = self._ids("fc")
            call_id = delta.id or self._ids("call")
            name = function.name or ""
            item = OutputFunctionCall(
                id=item_id, status="in_progress", call_id=call_id, name=name, arguments=""
            )
            call = self._calls[delta.index] = _Call(self._open(item), item_id, call_id, name)
        elif function.name and not call.name:
            call.name = function.name
        arguments = function.arguments
        if arguments:
            piece = arguments if isinstance(arguments, str) else _encode(arguments).decode()
            call.arguments += piece
            self._emit(
                ArgumentsDeltaEvent(
                    sequence_number=self._next(),
                    item_id=call.id,
                    output_index=call.index,
                    delta=piece,
                ),
                output=True,
            )

    # --- closing items -------------------------------------------------------------

    def _item_status(self) -> ItemStatus:
        return "incomplete" if self._finish_reason in ("length", "content_filter") else "completed"

    def _close_all(self) -> None:
        self._close_reasoning()
        self._close_message()
        self._close_calls()

    def _close_reasoning(self) -> None:
        current, self._reasoning = self._reasoning, None
        if current is None:
            return
        item_id, index, text = current.id, current.index, current.text
        if self._summary:
            self._emit(
                SummaryTextDoneEvent(
                    sequence_number=self._next(),
                    item_id=item_id,
                    output_index=index,
                    summary_index=0,
                    text=text,
                )
            )
            self._emit(
                SummaryPartDoneEvent(
                    sequence_number=self._next(),
                    item_id=item_id,
                    output_index=index,
                    summary_index=0,
                    part=SummaryText(text=text),
                )
            )
        else:
            self._emit(
                ReasoningTextDoneEvent(
                    sequence_number=self._next(),
                    item_id=item_id,
                    output_index=index,
                    content_index=0,
                    text=text,
                )
            )
            self._emit(
                PartDoneEvent(
                    sequence_number=self._next(),
                    item_id=item_id,
                    output_index=index,
                    content_index=0,
                    part=ReasoningText(text=text),
                )
            )
        self._done(index, reasoning_item(item_id, text, summary=self._summary))

    def _close_part(self, message: _Message) -> None:
        part = message.parts[-1]
        index = len(message.parts) - 1
        if isinstance(part, OutputRefusal):
            done: StreamEvent = RefusalDoneEvent(
                sequence_number=self._next(),
                item_id=message.id,
                output_index=message.index,
                content_index=index,
                refusal=part.refusal,
            )
        else:
            done = TextDoneEvent(
                sequence_number=self._next(),
                item_id=message.id,
                output_index=message.index,
                content_index=index,
                text=part.text,
            )
        self._emit(done)
        self._emit(
            PartDoneEvent(
                sequence_number=self._next(),
                item_id=message.id,
                output_index=message.index,
                content_index=index,
                part=part,
            )
        )

    def _close_message(self) -> None:
        message, self._message = self._message, None
        if message is None:
            return
        self._close_part(message)
        item = OutputMessage(id=message.id, status=self._item_status(), content=message.parts)
        self._done(message.index, item)

    def _close_calls(self) -> None:
        calls, self._calls = self._calls, {}
        for call in sorted(calls.values(), key=lambda c: c.index):
            self._emit(
                ArgumentsDoneEvent(
                    sequence_number=self._next(),
                    item_id=call.id,
                    output_index=call.index,
                    arguments=call.arguments,
                )
            )
            item = OutputFunctionCall(
                id=call.id,
                status="completed",
                call_id=call.call_id,
                name=call.name,
                arguments=call.arguments,
            )
            self._done(call.index, item)
