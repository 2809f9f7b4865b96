"""The Responses API ingress against golden payloads in OpenAI's documented shapes:
requests translated onto chat, chat answers and chat streams translated back, bodies
forwarded to native upstreams, and native streams read event by event
(tests/fixtures/responses/README.md names the pages each shape follows)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, cast

import msgspec
import pytest

from gateway.ingress.responses.decoding import decode_responses_body
from gateway.ingress.responses.events import (
    ClosingChunk,
    StreamTranslator,
    opening_frame,
    text_delta_frame,
    text_delta_middle,
)
from gateway.ingress.responses.events import frame as event_frame
from gateway.ingress.responses.from_chat import Echo, response_from_chat
from gateway.ingress.responses.native import forwarded_fields
from gateway.ingress.responses.stream import closed_response
from gateway.ingress.responses.to_chat import translate
from gateway.ingress.responses.wire import CreatedEvent, InProgressEvent, TextDeltaEvent
from providers.base import StreamChunk
from providers.chat_types import Usage
from providers.errors import (
    InvalidRequest,
    ProviderError,
    UpstreamRateLimited,
    UpstreamRejectedRequest,
    UpstreamStreamCut,
    UpstreamUnavailable,
)
from providers.http_client import Timeouts, UpstreamHTTP
from providers.openai.adapter import _stream_chunk
from providers.openai.responses import ResponsesAPI, ResponsesCall
from providers.openai.wire import chunk_decoder, completion_decoder
from routing.metadata import Cost, RoutingMetadata
from routing.router import RoutedStream
from tests.mock_upstream import ErrorReply, JSONReply, MockUpstream, SSEReply
from tests.responses_mock import (
    DEFAULT_RESPONSE_ID,
    frame,
    response_events,
    response_object,
    responses_usage,
)

FIXTURES = Path(__file__).parent / "fixtures" / "responses"
CREATED_AT = 1741569952
# the gateway's random ids: a response's 48 hex digits, an item's 24 and its number
_ITEM_ID = re.compile(r"(msg|fc|rs|call)_[0-9a-f]{24}(\d\d)")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def names(pattern: str) -> list[str]:
    return sorted(path.name for path in FIXTURES.glob(pattern))


def normalized(data: bytes | str) -> Any:
    text = data.decode() if isinstance(data, bytes) else data
    return json.loads(_ITEM_ID.sub(r"\1_\2", text))


def raws(items: list[Any]) -> list[msgspec.Raw]:
    return [msgspec.Raw(json.dumps(item).encode()) for item in items]


def decoded(body: dict[str, Any]) -> Any:
    return decode_responses_body(json.dumps(body).encode())


# --------------------------------------------------------------------------- requests


@pytest.mark.parametrize("name", names("request_*.json"))
def test_request_translation(name: str) -> None:
    case = fixture(name)
    body = decoded(case["responses"])
    translation = translate(body.request, body.fields, raws(case.get("history", [])))
    chat = {name: json.loads(bytes(value)) for name, value in translation.request.raw.items()}
    assert chat == case["chat"]
    assert list(translation.dropped) == case["dropped"]
    assert msgspec.to_builtins(translation.native_only) == case["native_only"]
    assert translation.summary is case["reasoning_as_summary"]
    # the typed request is what the raw bytes say (routing reads the one, adapters both)
    assert len(translation.request.messages) == len(case["chat"]["messages"])


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "m"}, "input", "missing_field"),
        ({"model": "m", "input": None}, "input", "missing_field"),
        ({"model": "m", "input": 3}, "input", "invalid_value"),
        ({"model": "m", "input": "hi", "temperature": 2.5}, "temperature", "invalid_value"),
        ({"model": "m", "input": "hi", "top_p": -0.1}, "top_p", "invalid_value"),
        (
            {"model": "m", "input": "hi", "max_output_tokens": 0},
            "max_output_tokens",
            "invalid_value",
        ),
        ({"model": "m", "input": "hi", "top_logprobs": 21}, "top_logprobs", "invalid_value"),
        # msgspec's path for a value in a map
        (
            {"model": "m", "input": "hi", "metadata": {"k": "v" * 513}},
            "metadata[...]",
            "invalid_value",
        ),
        (
            {"model": "m", "input": "hi", "metadata": {str(i): "v" for i in range(17)}},
            "metadata",
            "invalid_value",
        ),
        ({"model": "m", "input": "hi", "tool_choice": "sometimes"}, "tool_choice", "invalid_value"),
        (
            {"model": "m", "input": "hi", "text": {"format": {"type": "yaml"}}},
            "text.format.type",
            "invalid_value",
        ),
        (
            {"model": "m", "input": "hi", "text": {"format": {"type": "json_schema"}}},
            "text.format.name",
            "missing_field",
        ),
        ({"input": "hi"}, "model", "missing_field"),
        (
            {"model": "m", "input": "hi", "routing": {"strategy": "fastest"}},
            "routing.strategy",
            "invalid_value",
        ),
    ],
)
def test_bad_requests_are_400s_naming_the_param(
    body: dict[str, Any], param: str, code: str
) -> None:
    with pytest.raises(InvalidRequest) as raised:
        decoded(body)
    assert (raised.value.param, raised.value.code) == (param, code)


@pytest.mark.parametrize(
    ("item", "param"),
    [
        ({"role": "wizard", "content": "hi"}, "input[0].role"),
        ({"type": "message", "role": "user"}, "input[0].content"),
        ({"type": "function_call", "name": "f", "arguments": "{}"}, "input[0].call_id"),
        ({"type": "function_call_output", "call_id": "c"}, "input[0].output"),
        ({"role": "user", "content": [{"text": "no type"}]}, "input[0].content[0].type"),
        ({"role": "user", "content": [{"type": "input_text"}]}, "input[0].content[0].text"),
    ],
)
def test_bad_items_are_400s_naming_their_path(item: dict[str, Any], param: str) -> None:
    body = decoded({"model": "m", "input": [item]})
    with pytest.raises(InvalidRequest) as raised:
        translate(body.request, body.fields)
    assert raised.value.param == param


def test_an_input_with_nothing_to_answer_is_refused() -> None:
    body = decoded({"model": "m", "input": [{"type": "reasoning", "id": "rs_1", "summary": []}]})
    with pytest.raises(InvalidRequest) as raised:
        translate(body.request, body.fields)
    assert raised.value.param == "input"


# --------------------------------------------------------------------------- answers


@pytest.mark.parametrize("name", names("answer_*.json"))
def test_answer_translation(name: str) -> None:
    case = fixture(name)
    body = decoded(case["request"])
    translation = translate(body.request, body.fields)
    chat = json.dumps(case["chat"]).encode()
    view = completion_decoder.decode(chat)
    usage = view.usage.usage() if view.usage is not None else None
    response = response_from_chat(
        chat,
        usage,
        Echo(body.request, body.fields),
        "resp_test",
        model="deployment-model",
        summary=translation.summary,
    )
    response.created_at = CREATED_AT
    assert normalized(msgspec.json.encode(response)) == case["response"]


def test_an_answer_without_usage_has_none() -> None:
    body = decoded({"model": "m", "input": "hi"})
    chat = fixture("answer_text.json")["chat"]
    del chat["usage"]
    response = response_from_chat(
        json.dumps(chat).encode(),
        None,
        Echo(body.request, body.fields),
        "r",
        model="d",
        summary=False,
    )
    assert response.usage is None


# --------------------------------------------------------------------------- streams


def translated_stream(case: dict[str, Any]) -> list[StreamChunk]:
    body = decoded(case["request"])
    translation = translate(body.request, body.fields)
    translator = StreamTranslator(
        Echo(body.request, body.fields),
        "resp_test",
        "deployment-model",
        summary=translation.summary,
        created_at=CREATED_AT,
    )
    out: list[StreamChunk] = []
    for chunk in case["chunks"]:
        data = json.dumps(chunk).encode()
        out += translator.feed(_stream_chunk(data, chunk_decoder.decode(data)))
    return out + translator.finish()


@pytest.mark.parametrize("name", names("stream_*.json"))
def test_stream_translation(name: str) -> None:
    case = fixture(name)
    chunks = translated_stream(case)
    seen = []
    for position, chunk in enumerate(chunks):
        head, _, data = chunk.data.partition(b"\ndata: ")
        assert chunk.data.endswith(b"\n\n") and b"\n" not in data[:-2]  # one frame, one line
        event = normalized(data)
        assert head == b"event: " + event["type"].encode()
        assert event["sequence_number"] == position
        seen.append(
            {"has_output": chunk.has_output, "usage_only": chunk.usage_only, "event": event}
        )
    assert seen == case["events"]
    assert [c.usage_only for c in chunks].count(True) == 1 and chunks[-1].usage_only


def test_a_chunk_that_makes_several_events_sends_them_together() -> None:
    """Events made from one chat chunk are one burst: only the last of them may end a
    write (`more_buffered`), and it keeps the chat chunk's own flag."""
    body = decoded({"model": "m", "input": "hi", "stream": True})
    translator = StreamTranslator(Echo(body.request, body.fields), "r", "d", summary=False)
    first = translator.feed(StreamChunk(data=b'{"choices":[{"delta":{"content":"Hi"}}]}'))
    assert [c.more_buffered for c in first] == [True] * (len(first) - 1) + [False]
    burst = translator.feed(
        StreamChunk(data=b'{"choices":[{"delta":{"content":"!"}}]}', more_buffered=True)
    )
    assert [c.more_buffered for c in burst] == [True]


@pytest.mark.parametrize("text", ["Hi", "", 'a "quoted"\nline \\ é 😀', "\u2028</script>"])
def test_a_text_delta_framed_directly_is_the_events_own_encoding(text: str) -> None:
    event = TextDeltaEvent(
        sequence_number=17, item_id='msg_ab"c', output_index=2, content_index=1, delta=text
    )
    assert text_delta_frame(17, text_delta_middle('msg_ab"c', 2, 1), text) == event_frame(event)


def test_the_opening_events_framed_directly_are_their_own_encoding() -> None:
    body = decoded({"model": "m", "input": "hi", "stream": True, "metadata": {"k": "v"}})
    response = Echo(body.request, body.fields).response("resp_1", 7, "d", "in_progress", [])
    encoded = msgspec.json.encode(response)
    for sequence, event in ((0, CreatedEvent), (1, InProgressEvent)):
        tag = event.__struct_config__.tag
        assert isinstance(tag, str)
        direct = opening_frame(tag.encode(), sequence, encoded)
        assert direct == event_frame(event(sequence_number=sequence, response=response))


class _FinishedStream:
    usage_estimated = False


@pytest.mark.parametrize("finish", ["stop", "length"])
def test_the_closing_event_spliced_without_decoding_is_the_decoded_ones(finish: str) -> None:
    """The translator's closing chunk gets `routing_metadata` spliced into its kept parts;
    the bytes are those the general path (decode, splice, encode) makes of its frame."""
    body = decoded({"model": "m", "input": "hi", "stream": True, "metadata": {"k": "v"}})
    translator = StreamTranslator(Echo(body.request, body.fields), "r", "d", summary=False)
    translator.feed(StreamChunk(data=b'{"choices":[{"delta":{"content":"Hi \\"x\\""}}]}'))
    usage = Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5)
    data = b'{"choices":[{"delta":{},"finish_reason":"%b"}]}' % finish.encode()
    translator.feed(StreamChunk(data=data, usage=usage))
    closing = translator.finish()[-1]
    assert isinstance(closing, ClosingChunk)
    metadata = RoutingMetadata(
        provider="p",
        provider_model_id="d",
        model_canonical="m",
        routing_strategy="cost",
        cost=Cost(usd=0.00012, input_usd=0.00004, output_usd=0.00008, estimated=False),
        latency_ms=4.5,
        ttft_ms=1.5,
        throughput_tps=None,
        attempts=[],
        request_id="req",
    )
    stream = cast(RoutedStream, _FinishedStream())
    fast, kept = closed_response(closing, metadata, stream)
    slow, fields = closed_response(StreamChunk(data=closing.data), metadata, stream)
    assert fast == slow
    assert kept["output"] == fields["output"]
    assert (
        json.loads(fast.partition(b"data: ")[2])["response"]["routing_metadata"]["provider"] == "p"
    )


# --------------------------------------------------------------------------- native bodies


@pytest.mark.parametrize("name", names("native_*.json"))
def test_native_body(name: str) -> None:
    case = fixture(name)
    body = decoded(case["responses"])
    history = raws(case["history"]) if "history" in case else None
    extensions = body.fields.get("extensions")
    call = ResponsesCall(
        fields=forwarded_fields(body.fields, history),
        model=case["model"],
        drop=tuple(case["drop"]),
        extensions=msgspec.json.decode(extensions, type=dict[str, dict[str, msgspec.Raw]])
        if extensions
        else None,
    )
    api = ResponsesAPI(
        "openai", UpstreamHTTP("openai", Timeouts(5, 5, 5)), {}, "http://x", "openai"
    )
    assert json.loads(api.body_for(call)) == case["upstream"]


# --------------------------------------------------------------------------- native answers


def native_api(upstream: MockUpstream) -> ResponsesAPI:
    http = UpstreamHTTP("openai", Timeouts(total=5, connect=5, read=5))
    headers = {"content-type": "application/json", "authorization": "Bearer sk-up"}
    return ResponsesAPI("openai", http, headers, f"{upstream.url}/responses", "openai")


def native_call(stream: bool) -> ResponsesCall:
    fields = {"input": msgspec.Raw(b'"hi"'), "stream": msgspec.Raw(b"true" if stream else b"false")}
    return ResponsesCall(fields=fields, model="gpt-4o-2024-08-06", stream=stream)


async def test_native_complete_reads_usage_and_passes_the_body_through(
    upstream: MockUpstream,
) -> None:
    api = native_api(upstream)
    answer = await api.complete(native_call(False))
    assert json.loads(answer.body) == response_object(model="gpt-4o-2024-08-06")
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (10, 4)
    sent = upstream.last_request
    assert sent.path == "/v1/responses" and sent.headers["authorization"] == "Bearer sk-up"
    assert sent.json == {"input": "hi", "stream": False, "model": "gpt-4o-2024-08-06"}
    await api._http.aclose()


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (ErrorReply(429, "Rate limit reached", type="requests"), UpstreamRateLimited),
        (ErrorReply(400, "Invalid input", param="input"), UpstreamRejectedRequest),
        (ErrorReply(500, "The server had an error"), UpstreamUnavailable),
        (
            JSONReply(
                response_object(status="failed")
                | {"error": {"code": "server_error", "message": "boom"}}
            ),
            UpstreamUnavailable,
        ),
        (JSONReply({"not": "a response"} | {"status": 3}), ProviderError),
    ],
)
async def test_native_complete_failures_are_typed(
    upstream: MockUpstream, reply: Any, error: type[ProviderError]
) -> None:
    upstream.enqueue(reply)
    api = native_api(upstream)
    with pytest.raises(error):
        await api.complete(native_call(False))
    await api._http.aclose()


async def collect_native(upstream: MockUpstream) -> tuple[list[StreamChunk], Exception | None]:
    api = native_api(upstream)
    chunks: list[StreamChunk] = []
    try:
        async for chunk in api.stream(native_call(True)):
            chunks.append(chunk)
        return chunks, None
    except ProviderError as exc:
        return chunks, exc
    finally:
        await api._http.aclose()


async def test_native_stream_passes_every_event_through(upstream: MockUpstream) -> None:
    events = response_events()
    upstream.enqueue(SSEReply(chunks=events, send_done=False))
    chunks, error = await collect_native(upstream)
    assert error is None
    assert [c.data.decode() for c in chunks] == events  # byte for byte
    kinds = [c.data.split(b"\n")[0].removeprefix(b"event: ").decode() for c in chunks]
    assert [c.has_output for c in chunks] == [k.endswith(".delta") for k in kinds]
    assert [c.usage_only for c in chunks] == [False] * (len(chunks) - 1) + [True]
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (10, 4)


async def test_native_stream_holds_its_opening_until_the_answer_shows(
    upstream: MockUpstream,
) -> None:
    """`response.created` and `response.in_progress` alone are no proof the upstream is
    answering: they leave only with the first event that is, as one burst."""
    events = response_events()
    upstream.enqueue(SSEReply(chunks=events, send_done=False, delay_between=0.02))
    chunks, error = await collect_native(upstream)
    assert error is None
    assert [c.more_buffered for c in chunks[:3]] == [True, True, False]


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (
            {
                "type": "response.failed",
                "response": response_object(status="failed")
                | {"error": {"code": "rate_limit_exceeded", "message": "slow down"}},
            },
            UpstreamRateLimited,
        ),
        (
            {"type": "error", "code": "server_error", "message": "boom", "param": None},
            UpstreamUnavailable,
        ),
        # some servers nest the error (as chat's envelope does)
        (
            {"type": "error", "error": {"code": "invalid_prompt", "message": "no"}},
            UpstreamRejectedRequest,
        ),
    ],
)
async def test_native_stream_failing_before_output_fails_before_the_first_chunk(
    upstream: MockUpstream, failure: dict[str, Any], error: type[ProviderError]
) -> None:
    opening = response_events()[:2]
    upstream.enqueue(
        SSEReply(chunks=[*opening, frame({**failure, "sequence_number": 2})], send_done=False)
    )
    chunks, raised = await collect_native(upstream)
    assert chunks == [] and isinstance(raised, error)


async def test_native_stream_failing_after_output_ends_with_the_error(
    upstream: MockUpstream,
) -> None:
    events = response_events()[:6]  # through two deltas
    error = frame(
        {"type": "error", "sequence_number": 6, "code": "server_error", "message": "boom"}
    )
    upstream.enqueue(SSEReply(chunks=[*events, error], send_done=False))
    chunks, raised = await collect_native(upstream)
    assert len(chunks) == 6 and isinstance(raised, UpstreamUnavailable)
    assert "boom" in raised.message


async def test_native_stream_without_its_closing_event_is_cut(upstream: MockUpstream) -> None:
    upstream.enqueue(SSEReply(chunks=response_events()[:-1], send_done=False))
    chunks, raised = await collect_native(upstream)
    assert isinstance(raised, UpstreamStreamCut) and not any(c.usage_only for c in chunks)


async def test_native_stream_without_event_lines_reads_the_type_from_the_data(
    upstream: MockUpstream,
) -> None:
    """`event:` lines are optional in SSE; the type is in every event's JSON too."""
    events = [e.split("\n", 1)[1] for e in response_events() if isinstance(e, str)]
    upstream.enqueue(SSEReply(chunks=list(events), send_done=False))
    chunks, raised = await collect_native(upstream)
    assert raised is None and chunks[-1].usage_only
    assert chunks[0].data.startswith(b"event: response.created\ndata: ")
    assert chunks[-1].usage is not None


def test_native_usage_with_cached_and_reasoning_tokens() -> None:
    """Responses usage as chat `Usage`: what pricing reads, whatever the API."""
    usage = responses_usage(100, 40) | {
        "input_tokens_details": {"cached_tokens": 60},
        "output_tokens_details": {"reasoning_tokens": 30},
    }
    data = frame(
        {
            "type": "response.completed",
            "sequence_number": 9,
            "response": response_object(usage=usage),
        }
    )
    api = ResponsesAPI(
        "openai", UpstreamHTTP("openai", Timeouts(5, 5, 5)), {}, "http://x", "openai"
    )
    from providers.sse import SSEDecoder

    (event,) = SSEDecoder().feed_block(data.encode())
    chunk, _ = api._chunk(event)
    assert chunk.usage is not None and chunk.usage_only
    assert (
        chunk.usage.prompt_tokens,
        chunk.usage.cached_tokens,
        chunk.usage.completion_tokens,
    ) == (100, 60, 40)
    assert DEFAULT_RESPONSE_ID.encode() in chunk.data
