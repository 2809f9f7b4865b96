from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.sse import SSEData, SSEDecoder, SSEEvent


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


# --------------------------------------------------------------------------- SSEData
# The reader the OpenAI adapter uses: the common framing split with a few C calls, the
# rest by the rules above. Its payloads must be exactly SSEDecoder's, however the
# stream is framed and wherever the network cuts it.

LINES = st.sampled_from(
    [
        b'data: {"a": 1}',
        b'data: {"text": "two\\n\\nlines", "q": "\\"quoted\\""}',
        b"data:no-space",
        b"data:  two spaces",
        b"data: [DONE]",
        b"data:",
        b": keep-alive",
        b"event: message",
        b"id: 7",
        b"retry: 10",
        b"",
        b"",
    ]
)


def data_of_blocks(blocks: list[bytes]) -> list[bytes]:
    reader = SSEData()
    return [data for block in blocks for data in reader.feed_block(block)]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(LINES, max_size=24),
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
    st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
def test_sse_data_gives_the_decoders_payloads(
    lines: list[bytes], newline: bytes, cuts: list[int]
) -> None:
    stream = b"".join(line + newline for line in lines)
    points = sorted({min(cut, len(stream)) for cut in cuts})
    blocks = [stream[i:j] for i, j in zip([0, *points], [*points, len(stream)], strict=True)]
    expected = [event.data for event in feed_blocks(*blocks)]
    assert data_of_blocks(blocks) == expected


def test_sse_data_splits_a_read_of_many_events_and_keeps_the_partial_one() -> None:
    reader = SSEData()
    assert reader.feed_block(b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: {"c"') == [
        b'{"a":1}',
        b'{"b":2}',
    ]
    assert reader.feed_block(b":3}\n") == []
    assert reader.feed_block(b"\n") == [b'{"c":3}']


def test_sse_data_reads_multi_line_data_and_comments_by_the_rules() -> None:
    reader = SSEData()
    block = b': ping\n\ndata: {"a":\ndata: 1}\n\nevent: x\nid: 3\ndata:c\n\n\n\ndata: [DONE]\n\n'
    assert reader.feed_block(block) == [b'{"a":\n1}', b"c", b"[DONE]"]


def test_sse_data_hands_a_stream_with_cr_line_ends_to_the_decoder() -> None:
    reader = SSEData()
    assert reader.feed_block(b"data: x\n\ndata: y\r") == [b"x"]
    assert reader.feed_block(b"\n\r\ndata: z\n\n") == [b"y", b"z"]
