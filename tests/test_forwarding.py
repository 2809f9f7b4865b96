"""What crosses the gateway unchanged, and what it adds or consumes.

A real gateway sits in front of a scripted mock upstream; requests are raw HTTP so the
exact bytes the client sent, the upstream received, and the client got back can be
compared.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.gateway_server import GatewayServer, upstream_config
from tests.mock_upstream import (
    JSONReply,
    MockUpstream,
    RawReply,
    SSEReply,
    chunk,
    completion,
    default_chunks,
    make_usage,
    usage_chunk,
)

MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "hello there"}]
GATEWAY_ONLY_FIELDS = {"models", "gateway", "routing", "provider", "extensions"}
DONE = b"[DONE]"


# --------------------------------------------------------------------------- fixtures


# One gateway per module over the module's upstream (`shared_upstream`); `upstream`
# is that server cleared for each test.
@pytest.fixture(scope="module")
def gateway(shared_upstream: MockUpstream) -> Iterator[GatewayServer]:
    server = GatewayServer(upstream_config(shared_upstream.url)).start()
    yield server
    server.stop()


# --------------------------------------------------------------------------- helpers


def compact(value: Any) -> bytes:
    """JSON as the mock upstream writes it (and as OpenAI does): no spaces."""
    return json.dumps(value, separators=(",", ":")).encode()


def sent_upstream(gateway: GatewayServer, mock: MockUpstream, body: dict[str, Any]) -> Any:
    """POST a body through the gateway; the JSON the upstream received."""
    response = gateway.post(json.dumps(body).encode())
    assert response.status_code == 200, response.text
    return mock.last_request.json


def sse_data(body: bytes) -> list[bytes]:
    """The data of each event in an event-stream body, per the WHATWG parsing rules."""
    events: list[bytes] = []
    data: list[bytes] = []
    for line in body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
        if not line:
            if data:
                events.append(b"\n".join(data))
            data = []
            continue
        if line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        if name == b"data":
            data.append(value[1:] if value.startswith(b" ") else value)
    return events


def stream_through(gateway: GatewayServer, body: dict[str, Any] | None = None) -> list[bytes]:
    """Stream a request through the gateway; the data of every event it sent."""
    request = {"model": "test-model", "messages": MESSAGES, "stream": True, **(body or {})}
    response = gateway.post(request)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return sse_data(response.content)


def split_metadata(data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """An event's JSON without its `routing_metadata`, and that metadata."""
    decoded = json.loads(data)
    metadata = decoded.pop("routing_metadata")
    return decoded, metadata


def with_extras(value: dict[str, Any], **extras: Any) -> dict[str, Any]:
    return {**value, **extras}


def with_cost(value: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    """The upstream's object as the gateway passes it on: `usage.cost` added (OpenRouter's
    convention), the same number as `routing_metadata.cost.usd`."""
    return {**value, "usage": {**value["usage"], "cost": metadata["cost"]["usd"]}}


# --------------------------------------------------------------------------- request fields


def test_unknown_fields_forwarded_and_gateway_fields_consumed(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    body = {
        "model": "test-model",
        "messages": MESSAGES,
        "my_vendor_flag": {"a": [1, 2]},
        "metadata": {"team": "search", "run": "7"},
        "service_tier": "flex",
        "models": ["test-model"],
        "gateway": {"metadata": {"tenant": "t1"}, "routing": {"strategy": "cost"}},
        "routing": {"strategy": "latency", "max_latency_ms": 5000},
        "provider": {"sort": "price", "allow_fallbacks": False},
        "extensions": {
            "openai": {"prediction": {"type": "content", "content": "hi"}, "store": False},
            "anthropic": {"top_k": 5, "thinking": {"type": "enabled", "budget_tokens": 1024}},
        },
    }
    sent = sent_upstream(gateway, upstream, body)

    assert sent == {
        "model": "upstream-model-id",
        "messages": MESSAGES,
        "my_vendor_flag": {"a": [1, 2]},
        "metadata": {"team": "search", "run": "7"},
        "service_tier": "flex",
        "prediction": {"type": "content", "content": "hi"},
        "store": False,
    }
    assert not GATEWAY_ONLY_FIELDS & sent.keys()
    # the client's own bytes, not a re-encoding
    assert b'"my_vendor_flag":{"a": [1, 2]}' in upstream.last_request.body


@pytest.mark.parametrize(
    ("stream_fields", "upstream_options"),
    [
        ({}, None),
        ({"stream": True}, {"include_usage": True}),
        ({"stream": True, "stream_options": None}, {"include_usage": True}),
        (
            {"stream": True, "stream_options": {"include_usage": False, "include_obfuscation": 0}},
            {"include_usage": True, "include_obfuscation": 0},
        ),
    ],
    ids=["not_streamed", "no_options", "null_options", "client_options"],
)
def test_model_id_and_stream_options_upstream(
    gateway: GatewayServer,
    upstream: MockUpstream,
    stream_fields: dict[str, Any],
    upstream_options: dict[str, Any] | None,
) -> None:
    sent = sent_upstream(
        gateway, upstream, {"model": "test-model", "messages": MESSAGES, **stream_fields}
    )
    assert sent["model"] == "upstream-model-id"
    assert sent.get("stream_options") == upstream_options
    assert sent.get("stream") == stream_fields.get("stream")


GET_WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.mark.parametrize(
    ("function_call", "tool_choice"),
    [
        ({"name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
        ("auto", "auto"),
        ("none", "none"),
    ],
)
def test_deprecated_functions_become_tools(
    gateway: GatewayServer, upstream: MockUpstream, function_call: Any, tool_choice: Any
) -> None:
    sent = sent_upstream(
        gateway,
        upstream,
        {
            "model": "test-model",
            "messages": MESSAGES,
            "functions": [GET_WEATHER],
            "function_call": function_call,
        },
    )
    assert sent["tools"] == [{"type": "function", "function": GET_WEATHER}]
    assert sent["tool_choice"] == tool_choice
    assert "functions" not in sent
    assert "function_call" not in sent


def test_content_parts_and_developer_message_forwarded(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    messages = [
        {"role": "developer", "content": "Answer in one word."},
        {"role": "system", "content": [{"type": "text", "text": "Be kind."}]},
        {
            "role": "user",
            "name": "ana",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"},
                },
                {"type": "input_audio", "input_audio": {"data": "UklGRiQ=", "format": "wav"}},
                {
                    "type": "file",
                    "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"},
                },
                {"type": "file", "file": {"file_id": "file-abc123"}},
            ],
        },
    ]
    sent = sent_upstream(gateway, upstream, {"model": "test-model", "messages": messages})
    assert sent["messages"] == messages
    assert json.dumps(messages).encode() in upstream.last_request.body


# --------------------------------------------------------------------------- answers


def unusual_completion() -> dict[str, Any]:
    body = completion("Hi!", usage=make_usage(prompt_tokens=12, completion_tokens=2))
    body["service_tier"] = "default"
    body["x_vendor"] = {"k": 1, "nested": [None, True, 1.5]}
    choice = body["choices"][0]
    choice["message"]["annotations"] = []
    choice["logprobs"] = {
        "content": [
            {"token": "Hi", "logprob": -0.01, "bytes": [72, 105], "top_logprobs": []},
            {"token": "!", "logprob": -1.25, "bytes": [33], "top_logprobs": []},
        ],
        "refusal": None,
    }
    body["usage"]["prompt_tokens_details"]["audio_tokens"] = 0
    body["usage"]["x_usage_extra"] = "kept"
    return body


@pytest.mark.parametrize("pretty", [False, True], ids=["compact", "pretty_printed"])
def test_completion_comes_back_unchanged_plus_metadata(
    gateway: GatewayServer, upstream: MockUpstream, pretty: bool
) -> None:
    scripted = unusual_completion()
    if pretty:
        raw = json.dumps(scripted, indent=2).encode() + b"\n"
        upstream.enqueue(RawReply(raw))
    else:
        raw = compact(scripted)
        upstream.enqueue(JSONReply(scripted))

    response = gateway.post({"model": "test-model", "messages": MESSAGES})
    assert response.status_code == 200, response.text

    received = response.json()
    assert list(received) == [*scripted, "routing_metadata"]
    answer, metadata = split_metadata(response.content)
    assert answer == with_cost(scripted, metadata)
    assert metadata["provider"] == "mock"
    assert metadata["cost"]["estimated"] is False
    # spliced in, not re-encoded: the provider's bytes up to its usage come first, untouched
    assert response.content.startswith(raw[: raw.index(b'"usage"')])


def test_stream_chunks_come_back_byte_identical(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    logprobs = {"content": [{"token": "Hi", "logprob": -0.5, "bytes": [72, 105]}]}
    first = with_extras(chunk(role="assistant", content=""), service_tier="default", usage=None)
    second = with_extras(chunk(content="Hi"), obfuscation="x9", usage=None)
    second["choices"][0]["logprobs"] = logprobs
    third = with_extras(chunk(content=" there", id="chatcmpl-mock"), x_vendor={"k": 1})
    last_choice = with_extras(chunk(finish_reason="stop"), usage=None)
    usage = with_extras(usage_chunk(make_usage(7, 2)), x_vendor={"billing": "tier-2"})
    scripted: list[dict[str, Any]] = [first, second, third, last_choice, usage]
    upstream.enqueue(SSEReply(list(scripted)))

    events = stream_through(gateway)

    assert events[-1] == DONE
    *passed, closing = events[:-1]
    assert passed == [compact(c) for c in scripted[:-1]]
    assert closing.startswith(compact(usage)[: compact(usage).index(b'"usage"')])
    answer, metadata = split_metadata(closing)
    assert answer == with_cost(usage, metadata)
    assert metadata["cost"]["estimated"] is False
    assert metadata["cost"]["usd"] == pytest.approx((7 * 2.0 + 2 * 8.0) / 1e6)


def _sse_lines(*lines: str) -> str:
    """An SSE event written with CRLF line endings."""
    return "".join(line + "\r\n" for line in lines) + "\r\n"


def _split_json(value: dict[str, Any]) -> tuple[str, str]:
    """Compact JSON cut after a comma between members: joined by a newline it stays valid."""
    text = compact(value).decode()
    cut = text.index(',"choices"') + 1
    return text[:cut], text[cut:]


def robustness_reply() -> tuple[SSEReply, list[dict[str, Any]]]:
    """A stream with comments, CRLF endings, a two-line event and a `data:` without space."""
    chunks = [
        chunk(role="assistant", content=""),
        chunk(content="Hel"),
        chunk(content="lo"),
        chunk(finish_reason="stop"),
        usage_chunk(make_usage(5, 2)),
    ]
    head, tail = _split_json(chunks[2])
    items: list[dict[str, Any] | str | bytes] = [
        _sse_lines(": keep-alive"),
        _sse_lines(f"data: {compact(chunks[0]).decode()}"),
        _sse_lines(": keep-alive"),
        _sse_lines(f"data: {compact(chunks[1]).decode()}"),
        _sse_lines(f"data: {head}", f"data: {tail}"),
        _sse_lines(": ping", f"data:{compact(chunks[3]).decode()}"),
        _sse_lines(f"data: {compact(chunks[4]).decode()}"),
    ]
    return SSEReply(items), chunks


def test_sse_parsing_robustness(gateway: GatewayServer, upstream: MockUpstream) -> None:
    reply, chunks = robustness_reply()
    upstream.enqueue(reply)

    events = stream_through(gateway)

    assert events[-1] == DONE
    received = [json.loads(e) for e in events[:-1]]
    assert received[:-1] == chunks[:-1]
    metadata = received[-1].pop("routing_metadata")
    assert received[-1] == with_cost(chunks[-1], metadata)
    # one line per event, as OpenAI sends them, for the simplest of SSE clients
    for event in events:
        assert b"\n" not in event


def test_sse_parsing_robustness_with_sdk(gateway: GatewayServer, upstream: MockUpstream) -> None:
    reply, _ = robustness_reply()
    upstream.enqueue(reply)

    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0) as client:
        stream = client.chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        received = list(stream)

    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == "Hello"
    assert received[-1].usage is not None and received[-1].usage.total_tokens == 7
    assert "routing_metadata" in (received[-1].model_extra or {})


def test_stream_without_usage_gets_gateway_closing_chunk(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    scripted = default_chunks(include_usage=False)
    upstream.enqueue(SSEReply(list(scripted)))

    events = stream_through(gateway)

    assert events[-1] == DONE
    *passed, closing = events[:-1]
    assert passed == [compact(c) for c in scripted]
    made, metadata = split_metadata(closing)
    assert made["object"] == "chat.completion.chunk"
    assert made["choices"] == []
    assert metadata["provider"] == "mock"
    assert metadata["cost"]["estimated"] is True
    assert metadata["cost"]["usd"] > 0
    # OpenAI keeps one id per stream; our count of what the stream carried
    assert made["id"] == scripted[0]["id"]
    assert made["usage"]["completion_tokens"] == 4  # four content deltas
    assert made["usage"]["prompt_tokens"] >= 1


def test_completion_without_usage_is_priced_from_its_text(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    answer = completion(content="x" * 400)
    del answer["usage"]
    upstream.enqueue(JSONReply(answer))

    response = gateway.post({"model": "test-model", "messages": MESSAGES})

    metadata = response.json()["routing_metadata"]
    assert "usage" not in response.json()  # not invented in the provider's object
    assert metadata["cost"]["estimated"] is True
    assert metadata["cost"]["output_usd"] == pytest.approx(100 * 8.0 / 1e6)  # 400 chars ≈ 100


def test_explicit_nulls_read_as_not_sent(gateway: GatewayServer, upstream: MockUpstream) -> None:
    body = {"model": "test-model", "messages": MESSAGES, "stream": None, "temperature": None}
    response = gateway.post(body)
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "chat.completion"
    assert upstream.requests[0].json["temperature"] is None  # forwarded as sent
