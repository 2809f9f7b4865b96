from __future__ import annotations

import pytest

from providers.sse import SSEDecoder, SSEEvent


def decode(text: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = []
    for line in text.split(b"\n"):
        event = decoder.feed(line.rstrip(b"\r"))
        if event is not None:
            events.append(event)
    return events


def test_one_event_a_blank_line() -> None:
    assert decode(b'data: {"a":1}\n\ndata: [DONE]\n\n') == [
        SSEEvent(b'{"a":1}'),
        SSEEvent(b"[DONE]"),
    ]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert decode(b'data: {"a":\ndata: 1}\n\n') == [SSEEvent(b'{"a":\n1}')]


def test_comments_are_keepalives_not_events() -> None:
    assert decode(b": ping\n\n: ping\ndata: x\n\n") == [SSEEvent(b"x")]


@pytest.mark.parametrize("line", [b"data:x", b"data: x"])
def test_the_space_after_the_colon_is_optional(line: bytes) -> None:
    assert decode(line + b"\n\n") == [SSEEvent(b"x")]


def test_only_one_leading_space_is_stripped() -> None:
    assert decode(b"data:  x\n\n") == [SSEEvent(b" x")]


def test_event_and_id_fields() -> None:
    events = decode(b"event: message_start\nid: 7\ndata: {}\n\nretry: 10\ndata: y\n\n")
    assert events == [SSEEvent(b"{}", b"message_start", b"7"), SSEEvent(b"y", b"message", b"7")]


def test_crlf_line_endings() -> None:
    assert decode(b"data: a\r\n\r\ndata: b\r\n\r\n") == [SSEEvent(b"a"), SSEEvent(b"b")]


def test_an_event_without_data_is_not_dispatched() -> None:
    assert decode(b"event: ping\n\ndata: z\n\n") == [SSEEvent(b"z")]


def test_unterminated_event_at_end_is_not_dispatched() -> None:
    assert decode(b"data: partial") == []


# --------------------------------------------------------------------------- raw blocks

STREAM = b': ping\ndata: {"a":\ndata: 1}\n\nevent: x\nid: 3\ndata:c\n\ndata: [DONE]\n\n'
EVENTS = [SSEEvent(b'{"a":\n1}'), SSEEvent(b"c", b"x", b"3"), SSEEvent(b"[DONE]", id=b"3")]


def feed_blocks(*blocks: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return [event for block in blocks for event in decoder.feed_block(block)]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_blocks_split_anywhere_give_the_same_events(newline: bytes) -> None:
    """Reads end wherever the network cut them: inside a field, between CR and LF, or
    with an empty read in between; every line ending the spec allows is a line end."""
    stream = STREAM.replace(b"\n", newline)
    for i in range(len(stream) + 1):
        for j in range(i, len(stream) + 1):
            blocks = (stream[:i], stream[i:j], stream[j:])
            assert feed_blocks(*blocks) == EVENTS, blocks


def test_a_cr_ending_a_block_dispatches_without_waiting_for_its_lf() -> None:
    decoder = SSEDecoder()
    assert decoder.feed_block(b"data: x\r\n\r") == [SSEEvent(b"x")]
    # the LF that completes the CRLF is not a second, blank line
    assert decoder.feed_block(b"") == []
    assert decoder.feed_block(b"\ndata: y\r\n") == []
    assert decoder.feed_block(b"\r\n") == [SSEEvent(b"y")]
