"""Server-sent events: a line-based decoder per the WHATWG event-stream rules."""

from __future__ import annotations

import msgspec


class SSEEvent(msgspec.Struct):
    data: bytes
    event: bytes = b"message"
    id: bytes | None = None


class SSEDecoder:
    """Feed lines (bytes) without their terminator; an event is returned at each blank line.

    Handles multi-line `data:` fields (joined with newlines), comments (`:` lines, used as
    keep-alives), `event:`/`id:` fields and the optional single space after the colon.
    """

    __slots__ = ("_after_cr", "_data", "_event", "_id", "_partial")

    def __init__(self) -> None:
        self._data: list[bytes] = []
        self._event = b""
        self._id: bytes | None = None
        self._partial = b""  # an incomplete line at the end of the last block
        self._after_cr = False  # the last block ended in CR: a LF opening the next is its pair

    def feed_block(self, block: bytes) -> list[SSEEvent]:
        """Feed raw body bytes as they arrive; returns the events they complete.

        Lines end in LF, CRLF or a lone CR. A CR at the end of a block ends its line at
        once (a blank line dispatches its event without waiting for the next read); if the
        next block opens with LF, that LF is the rest of the CRLF, not another line."""
        if self._after_cr and block:
            self._after_cr = False
            if block[:1] == b"\n":
                block = block[1:]
        if b"\r" in block:
            self._after_cr = block[-1:] == b"\r"
            block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = (self._partial + block).split(b"\n") if self._partial else block.split(b"\n")
        self._partial = lines.pop()
        events = []
        for line in lines:
            event = self.feed(line)
            if event is not None:
                events.append(event)
        return events

    def feed(self, line: bytes) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == 58:  # b":"
            return None
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value
        elif name == b"id" and b"\0" not in value:
            self._id = value
        # `retry` and unknown fields are ignored, as the spec says
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = b""
            return None
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        event = SSEEvent(data, self._event or b"message", self._id)
        self._data.clear()
        self._event = b""
        return event


class SSEData:
    """The `data` of each complete event, read straight off the bytes: what a reader that
    needs nothing else of an event (not its name, not its id) passes on.

    The common framing, `data: <one line>` events ending in a blank line with LF line
    ends, is split with a few C calls per read, not a Python step per line; any other
    event (several `data:` lines, comments, other fields, no space after the colon) is
    read line by line by the spec's rules, and a stream that uses CR line ends is handed
    to `SSEDecoder` from its first CR on. The payloads are exactly `SSEDecoder`'s."""

    __slots__ = ("_decoder", "_rest")

    def __init__(self) -> None:
        self._rest = b""  # what followed the last blank line: the start of the next event
        self._decoder: SSEDecoder | None = None  # once a CR is seen

    def feed_block(self, block: bytes) -> list[bytes]:
        """Feed raw body bytes as they arrive; returns the data of the events they
        complete (an event with no data is not one)."""
        if self._decoder is not None:
            return [event.data for event in self._decoder.feed_block(block)]
        buffer = self._rest + block if self._rest else block
        if b"\r" in buffer:
            self._decoder = SSEDecoder()
            self._rest = b""
            return [event.data for event in self._decoder.feed_block(buffer)]
        end = buffer.rfind(b"\n\n")
        if end < 0:
            self._rest = buffer
            return []
        self._rest = buffer[end + 2 :]
        payloads = []
        for event in buffer[:end].split(b"\n\n"):
            if event[:6] == b"data: " and b"\n" not in event:
                payloads.append(event[6:])
            elif event:
                data = _data_of(event)
                if data is not None:
                    payloads.append(data)
        return payloads


def _data_of(event: bytes) -> bytes | None:
    """One event's lines by the spec (a blank line can only be its first or last: the
    reader split events at blank lines, so at most one event has data)."""
    decoder = SSEDecoder()
    dispatched = None
    for line in (*event.split(b"\n"), b""):
        dispatched = decoder.feed(line) or dispatched
    return None if dispatched is None else dispatched.data
