"""`POST /v1/messages` end to end: the official `anthropic` SDK against the real gateway
on a loopback socket, in front of mock upstreams that speak each vendor's wire format.

- `claude-native`: a `kind: anthropic` deployment, which gets the client's own body;
- `claude-translated`: an OpenAI-compatible deployment, which gets the request as chat;
- `claude-sim`: a simulated one;
- `claude-fallback`: both, the Anthropic one first.

Each test checks what the SDK user sees and what reached the upstream.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.gateway_server import GatewayServer
from tests.mock_upstream import (
    JSONReply,
    MockUpstream,
    RawReply,
    SSEReply,
    chunk,
    completion,
    make_usage,
    usage_chunk,
)

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
PROVIDER_KEY = "sk-ant-api03-e2e-messages-secret"
OPENAI_KEY = "sk-openai-e2e-messages-secret"
CLAUDE = "claude-sonnet-4-5-20250929"
GPT = "gpt-4o-mini"
WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}
_TRANSPORT_HEADERS = {"host", "content-length", "user-agent", "accept-encoding"}


def anthropic_fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())["anthropic"]


def sse_events(name: str) -> list[dict[str, Any] | str | bytes]:
    text = (FIXTURES / name).read_text()
    return [event + "\n\n" for event in text.split("\n\n") if event.strip()]


def anthropic_error(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


def events_of(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


@pytest.fixture(scope="module")
def openai_upstream() -> Iterator[MockUpstream]:
    with MockUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    shared_upstream: MockUpstream, openai_upstream: MockUpstream
) -> Iterator[GatewayServer]:
    native = {
        "provider": "claude",
        "model": CLAUDE,
        "input_per_mtok": 3,
        "output_per_mtok": 15,
        "cached_input_per_mtok": 0.3,
    }
    translated = {
        "provider": "openai",
        "model": GPT,
        "input_per_mtok": 0.15,
        "output_per_mtok": 0.6,
    }
    config = {
        "auth": "none",
        "store": "memory://",
        "providers": {
            "claude": {
                "kind": "anthropic",
                "base_url": f"http://127.0.0.1:{shared_upstream.port}",
                "api_key": PROVIDER_KEY,
            },
            "openai": {"kind": "openai", "base_url": openai_upstream.url, "api_key": OPENAI_KEY},
            "sim": {"kind": "simulated"},
        },
        "models": {
            "claude-native": {"deployments": [native]},
            "claude-translated": {"deployments": [translated]},
            "claude-sim": {
                "deployments": [
                    {"provider": "sim", "model": "sim-1", "input_per_mtok": 1, "output_per_mtok": 2}
                ]
            },
            "claude-fallback": {"deployments": [native, translated]},
        },
        "routing": {"retries": {"attempts": 1}},
    }
    server = GatewayServer(config).start()
    yield server
    server.stop()


@pytest.fixture
def claude(gateway: GatewayServer, upstream: MockUpstream) -> MockUpstream:
    return upstream


@pytest.fixture
def gpt(openai_upstream: MockUpstream) -> MockUpstream:
    openai_upstream.reset()
    return openai_upstream


@pytest.fixture
def client(
    gateway: GatewayServer, claude: MockUpstream, gpt: MockUpstream
) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=gateway.url, api_key="sk-gateway-key", max_retries=0, timeout=10
    ) as sdk:
        yield sdk


def metadata_of(answer: Any) -> dict[str, Any]:
    extra = answer.model_extra or {}
    metadata: dict[str, Any] = extra["routing_metadata"]
    return metadata


def sent_headers(request: Any) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k not in _TRANSPORT_HEADERS}


# --------------------------------------------------------------------------- native


def test_native_message_is_the_upstreams_with_routing_metadata(
    client: anthropic.Anthropic, claude: MockUpstream
) -> None:
    claude.enqueue(JSONReply(anthropic_fixture("response_tool_use.json")))
    raw = client.messages.with_raw_response.create(
        model="claude-native",
        max_tokens=300,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Weather in SF and NYC?"}],
        tools=[WEATHER],
        metadata={"user_id": "u-1"},
        extra_headers={"anthropic-beta": "token-efficient-tools-2025-02-19"},
    )
    message = raw.parse()

    assert message.id == "msg_01Aq9w938a90dw8q"
    assert [block.type for block in message.content] == ["text", "tool_use", "tool_use"]
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (472, 91)
    metadata = metadata_of(message)
    assert (metadata["provider"], metadata["provider_model_id"]) == ("claude", CLAUDE)
    assert metadata["cost"]["usd"] == pytest.approx((472 * 3 + 91 * 15) / 1e6)
    assert raw.headers["x-switchboard-provider"] == "claude"
    assert raw.headers["x-switchboard-model"] == CLAUDE
    assert float(raw.headers["x-switchboard-cost-usd"]) == pytest.approx(metadata["cost"]["usd"])
    assert raw.headers["request-id"] == raw.headers["x-request-id"] == metadata["request_id"]
    assert "x-switchboard-dropped-params" not in raw.headers

    sent = claude.last_request
    assert (sent.method, sent.path, sent.query) == ("POST", "/v1/messages", {})
    headers = sent_headers(sent)
    assert headers.pop("anthropic-version")  # the SDK's own version, passed on
    assert headers.pop("x-request-id") == metadata["request_id"]  # correlation, as on chat
    assert headers == {
        "x-api-key": PROVIDER_KEY,
        "anthropic-beta": "token-efficient-tools-2025-02-19",
        "content-type": "application/json",
        "accept": "application/json",
    }
    assert sent.json == {
        "max_tokens": 300,
        "messages": [{"role": "user", "content": "Weather in SF and NYC?"}],
        "model": CLAUDE,
        "metadata": {"user_id": "u-1"},
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "tools": [WEATHER],
    }


def test_native_body_is_forwarded_byte_for_byte(
    gateway: GatewayServer, claude: MockUpstream
) -> None:
    claude.enqueue(JSONReply(anthropic_fixture("response_thinking.json")))
    body = (
        b'{"model":  "claude-native", "max_tokens": 2048, "routing": {"strategy": "cost"},\n'
        b' "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi",'
        b' "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},'
        b' {"role": "assistant", "content": [{"type": "thinking", "thinking": "t",'
        b' "signature": "EqQBCgIYAhIM1gbc"}, {"type": "text", "text": "Hello"}]},'
        b' {"role": "user", "content": "again"}],'
        b' "thinking": {"type": "enabled", "budget_tokens": 1024}, "brand_new_field": [1, 2]}'
    )
    answer = httpx.post(
        f"{gateway.url}/v1/messages?beta=true",
        content=body,
        headers={
            "x-api-key": "k",
            "anthropic-version": "2023-06-01",
            "content-type": "application/json",
        },
    )
    assert answer.status_code == 200, answer.text
    sent = claude.last_request
    assert (sent.path, sent.query) == ("/v1/messages", {"beta": "true"})
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body == (
        b'{"model":"claude-sonnet-4-5-20250929","max_tokens":2048,"messages":[{"role": "user",'
        b' "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral",'
        b' "ttl": "1h"}}]}, {"role": "assistant", "content": [{"type": "thinking", "thinking":'
        b' "t", "signature": "EqQBCgIYAhIM1gbc"}, {"type": "text", "text": "Hello"}]}, {"role":'
        b' "user", "content": "again"}],"thinking":{"type": "enabled", "budget_tokens": 1024},'
        b'"brand_new_field":[1, 2]}'
    )
    # the answer is the upstream's, with routing_metadata and the cost in USD (OpenRouter's
    # `usage.cost`, on every endpoint's answer) spliced in
    expected = anthropic_fixture("response_thinking.json")
    got = answer.json()
    metadata = got.pop("routing_metadata")
    assert metadata["provider"] == "claude"
    assert got["usage"].pop("cost") == metadata["cost"]["usd"]
    assert got == expected


def test_native_stream_reaches_the_sdk_event_for_event(
    client: anthropic.Anthropic, claude: MockUpstream
) -> None:
    claude.enqueue(SSEReply(sse_events("stream_tool_use.sse"), send_done=False))
    with client.messages.stream(
        model="claude-native",
        max_tokens=500,
        messages=[{"role": "user", "content": "Weather in Paris and Tokyo?"}],
        tools=[WEATHER],
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()

    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert [b.input for b in final.content if b.type == "tool_use"] == [
        {"location": "Paris"},
        {"location": "Tokyo"},
    ]
    assert final.usage.output_tokens == 89
    assert claude.last_request.json["stream"] is True
    assert claude.last_request.headers["accept"] == "text/event-stream"


def test_native_stream_wire_is_the_upstreams_plus_routing_metadata(
    gateway: GatewayServer, claude: MockUpstream
) -> None:
    claude.enqueue(SSEReply(sse_events("stream_thinking.sse"), send_done=False))
    answer = httpx.post(
        f"{gateway.url}/v1/messages",
        json={
            "model": "claude-native",
            "max_tokens": 200,
            "stream": True,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": "27 * 453?"}],
        },
    )
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert answer.headers["x-switchboard-provider"] == "claude"
    events = events_of(answer.text)
    upstream = events_of("".join(str(e) for e in sse_events("stream_thinking.sse")))
    assert events[:-1] == upstream[:-1]  # every event as Anthropic sent it, ping included
    kind, stop = events[-1]
    assert kind == "message_stop"
    metadata = stop.pop("routing_metadata")
    assert stop == {"type": "message_stop"}
    assert metadata["cost"]["estimated"] is False
    assert metadata["ttft_ms"] is not None
    assert [e[0] for e in events if e[1].get("delta", {}).get("type") == "signature_delta"]


def test_a_beta_the_upstream_refuses_is_dropped_and_named(
    client: anthropic.Anthropic, claude: MockUpstream
) -> None:
    refusal = anthropic_error(
        "invalid_request_error",
        "Unexpected value(s) `afk-mode-2026-01-31` for the `anthropic-beta` header. Please "
        "consult our documentation at docs.claude.com or try again without the header.",
    )
    claude.enqueue(
        JSONReply(refusal, status=400), JSONReply(anthropic_fixture("response_text_cached.json"))
    )
    raw = client.messages.with_raw_response.create(
        model="claude-native",
        max_tokens=100,
        messages=[{"role": "user", "content": "Hello"}],
        extra_headers={"anthropic-beta": "effort-2025-11-24,afk-mode-2026-01-31"},
    )
    assert raw.parse().content[0].type == "text"
    assert raw.headers["x-switchboard-dropped-params"] == "anthropic-beta:afk-mode-2026-01-31"
    first, second = claude.requests
    assert first.headers["anthropic-beta"] == "effort-2025-11-24,afk-mode-2026-01-31"
    assert second.headers["anthropic-beta"] == "effort-2025-11-24"
    assert metadata_of(raw.parse())["attempts"] == []  # one try, sent twice


def test_count_tokens_native(client: anthropic.Anthropic, claude: MockUpstream) -> None:
    claude.enqueue(JSONReply({"input_tokens": 2095}))
    raw = client.messages.with_raw_response.count_tokens(
        model="claude-native",
        messages=[{"role": "user", "content": "Hello, world"}],
        system="Be brief.",
    )
    assert raw.parse().input_tokens == 2095
    assert raw.headers["x-switchboard-token-count"] == "native"
    assert raw.headers["x-switchboard-provider"] == "claude"
    sent = claude.last_request
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.json == {
        "model": CLAUDE,
        "messages": [{"role": "user", "content": "Hello, world"}],
        "system": "Be brief.",
    }


def test_count_tokens_estimates_when_no_deployment_counts(
    client: anthropic.Anthropic, claude: MockUpstream, gpt: MockUpstream
) -> None:
    messages: Any = [{"role": "user", "content": "Hello, world " * 40}]
    raw = client.messages.with_raw_response.count_tokens(
        model="claude-translated", messages=messages
    )
    expected = len(json.dumps(messages, separators=(",", ":"))) // 4
    assert raw.parse().input_tokens == pytest.approx(expected, abs=2)
    assert raw.headers["x-switchboard-token-count"] == "estimate"
    assert gpt.requests == []
    # a native deployment that cannot count now: the estimate, not an error
    claude.enqueue(JSONReply(anthropic_error("overloaded_error", "Overloaded"), status=529))
    raw = client.messages.with_raw_response.count_tokens(model="claude-native", messages=messages)
    assert raw.headers["x-switchboard-token-count"] == "estimate"


# --------------------------------------------------------------------------- translated


def test_translated_message(client: anthropic.Anthropic, gpt: MockUpstream) -> None:
    gpt.enqueue(
        JSONReply(
            completion(
                "Hi there!",
                usage=make_usage(prompt_tokens=20, completion_tokens=4, cached_tokens=8),
            )
        )
    )
    raw = client.messages.with_raw_response.create(
        model="claude-translated",
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": "Hello"}],
        stop_sequences=["END"],
        extra_body={"temperature": 0.2},  # older API versions' field: no SDK argument now
    )
    message = raw.parse()
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [("text", "Hi there!")]
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (12, 8)
    assert message.usage.output_tokens == 4
    assert message.id.startswith("msg_")
    metadata = metadata_of(message)
    assert (metadata["provider"], metadata["provider_model_id"]) == ("openai", GPT)
    assert metadata["cost"]["estimated"] is False
    assert raw.headers["x-switchboard-provider"] == "openai"

    sent = gpt.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert sent.json == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello"},
        ],
        "model": GPT,
        "max_tokens": 64,  # no preset: the field as the translation wrote it
        "temperature": 0.2,
        "stop": ["END"],
    }


def test_translated_tool_round_trip(client: anthropic.Anthropic, gpt: MockUpstream) -> None:
    call = {
        "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
    }
    gpt.enqueue(
        JSONReply(completion(None, tool_calls=[call])), JSONReply(completion("Sunny, 21°C."))
    )
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.messages.create(
        model="claude-translated",
        max_tokens=100,
        messages=messages,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    assert first.stop_reason == "tool_use"
    [tool_use] = [b for b in first.content if b.type == "tool_use"]
    assert (tool_use.id, tool_use.name, tool_use.input) == (
        call["id"],
        "get_weather",
        {"location": "Paris"},
    )

    messages += [
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": tool_use.id, "content": "21°C, sunny"},
            ],
        },
    ]
    second = client.messages.create(
        model="claude-translated",
        max_tokens=100,
        messages=messages,
        tools=[WEATHER],
    )
    assert second.content[0].type == "text" and second.content[0].text == "Sunny, 21°C."

    asked, answered = gpt.requests
    assert asked.json["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    function = {
        "name": "get_weather",
        "description": WEATHER["description"],
        "parameters": WEATHER["input_schema"],
    }
    assert asked.json["tools"] == [{"type": "function", "function": function}]
    assert answered.json["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [{**call, "type": "function"}]},
        {"role": "tool", "content": "21°C, sunny", "tool_call_id": call["id"]},
    ]


def test_translated_stream(client: anthropic.Anthropic, gpt: MockUpstream) -> None:
    gpt.enqueue(SSEReply(include_usage=True))  # the mock's default stream, usage at the end
    with client.messages.stream(
        model="claude-translated", max_tokens=50, messages=[{"role": "user", "content": "Hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from mock upstream"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4
    assert gpt.last_request.json["stream_options"] == {"include_usage": True}


def test_translated_stream_wire_is_the_messages_event_sequence(
    gateway: GatewayServer, gpt: MockUpstream
) -> None:
    call_start = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    call_args = {"index": 0, "function": {"arguments": '{"location":"Paris"}'}}
    gpt.enqueue(
        SSEReply(
            [
                chunk(role="assistant", content=""),
                chunk(content="Let me check."),
                chunk(tool_calls=[call_start]),
                chunk(tool_calls=[call_args]),
                chunk(finish_reason="tool_calls"),
                usage_chunk(make_usage(prompt_tokens=30, completion_tokens=12)),
            ]
        )
    )
    answer = httpx.post(
        f"{gateway.url}/v1/messages",
        json={
            "model": "claude-translated",
            "max_tokens": 50,
            "stream": True,
            "tools": [WEATHER],
            "messages": [{"role": "user", "content": "Weather?"}],
        },
        headers={"anthropic-beta": "fine-grained-tool-streaming-2025-05-14"},
    )
    assert (
        answer.headers["x-switchboard-dropped-params"]
        == "anthropic-beta:fine-grained-tool-streaming-2025-05-14"
    )
    events = events_of(answer.text)
    assert [(kind, data.get("delta", {}).get("type")) for kind, data in events] == [
        ("message_start", None),
        ("content_block_start", None),
        ("ping", None),
        ("content_block_delta", "text_delta"),
        ("content_block_stop", None),
        ("content_block_start", None),
        ("content_block_delta", "input_json_delta"),
        ("content_block_stop", None),
        ("message_delta", None),
        ("message_stop", None),
    ]
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"]["output_tokens"] == 12
    assert events[-1][1]["routing_metadata"]["provider"] == "openai"


def test_simulated_deployment(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model="claude-sim", max_tokens=20, messages=[{"role": "user", "content": "Hi"}]
    )
    assert message.content[0].type == "text" and message.content[0].text
    assert metadata_of(message)["provider"] == "sim"


# --------------------------------------------------------------------------- routing


def test_an_overloaded_native_deployment_falls_back_to_a_translated_one(
    client: anthropic.Anthropic, claude: MockUpstream, gpt: MockUpstream
) -> None:
    claude.enqueue(JSONReply(anthropic_error("overloaded_error", "Overloaded"), status=529))
    gpt.enqueue(SSEReply(include_usage=True))
    with client.messages.stream(
        model="claude-fallback",
        max_tokens=50,
        messages=[{"role": "user", "content": "Hello"}],
        extra_body={"routing": {"order": ["claude", "openai"]}},
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from mock upstream"
    assert final.stop_reason == "end_turn"
    assert len(claude.requests) == 1 and len(gpt.requests) == 1
    assert "routing" not in (claude.last_request.json or {})


def test_routing_metadata_lists_the_failed_attempt(
    client: anthropic.Anthropic, claude: MockUpstream, gpt: MockUpstream
) -> None:
    claude.enqueue(JSONReply(anthropic_error("api_error", "Internal"), status=500))
    gpt.enqueue(JSONReply())
    message = client.messages.create(
        model="claude-fallback",
        max_tokens=50,
        messages=[{"role": "user", "content": "Hello"}],
        extra_body={"routing": {"order": ["claude"]}},
    )
    metadata = metadata_of(message)
    assert metadata["provider"] == "openai"
    assert [(a["provider"], a["status"], a["error"]) for a in metadata["attempts"]] == [
        ("claude", 500, "upstream_unavailable")
    ]


# --------------------------------------------------------------------------- errors


def test_errors_are_anthropic_shaped(client: anthropic.Anthropic, gateway: GatewayServer) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(
            model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    body = missing.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert missing.value.response.headers["x-switchboard-error-code"] == "model_not_found"
    assert missing.value.request_id == missing.value.response.headers["x-request-id"]

    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(
            model="claude-native",
            max_tokens=5,
            messages=[{"role": "user", "content": "x"}],
            extra_body={"temperature": 3},
        )
    assert "temperature" in bad.value.message

    for method, path, status in (
        ("GET", "/v1/messages", 405),
        ("POST", "/v1/messages/batches", 404),
    ):
        answer = httpx.request(method, gateway.url + path)
        assert answer.status_code == status
        assert answer.json()["type"] == "error", answer.text
        assert answer.headers["request-id"] == answer.headers["x-request-id"]
    json_type = {"content-type": "application/json"}
    not_json = httpx.post(f"{gateway.url}/v1/messages", content=b"{nope", headers=json_type)
    assert not_json.status_code == 400
    assert not_json.json()["error"]["type"] == "invalid_request_error"
    assert not_json.headers["x-switchboard-error-code"] == "invalid_json"
    untyped = httpx.post(f"{gateway.url}/v1/messages", content=b"{}")
    assert untyped.status_code == 415
    assert untyped.json()["error"]["type"] == "invalid_request_error"
    # only /v1/messages answers in Anthropic's shape
    chat = httpx.get(f"{gateway.url}/v1/chat/completions")
    assert chat.json()["error"]["type"] == "invalid_request_error" and "type" not in chat.json()


def failed(error_type: str, message: str, status: int, **headers: str) -> JSONReply:
    return JSONReply(anthropic_error(error_type, message), status=status, headers=headers)


@pytest.mark.parametrize(
    ("reply", "exception", "error_type"),
    [
        (
            failed("invalid_request_error", "messages: roles must alternate", 400),
            anthropic.BadRequestError,
            "invalid_request_error",
        ),
        (
            failed("rate_limit_error", "Slow down", 429, **{"retry-after": "30"}),
            anthropic.RateLimitError,
            "rate_limit_error",
        ),
        (
            failed("overloaded_error", "Overloaded", 529),
            anthropic.OverloadedError,  # a 529, as Anthropic's own
            "overloaded_error",
        ),
        (
            failed("authentication_error", f"invalid x-api-key {PROVIDER_KEY}", 401),
            anthropic.InternalServerError,
            "api_error",
        ),
        (
            RawReply(b"<html>gateway timeout</html>", status=504, content_type="text/html"),
            anthropic.APIStatusError,
            "timeout_error",
        ),
    ],
)
def test_upstream_failures_reach_the_sdk_as_anthropic_errors(
    client: anthropic.Anthropic,
    claude: MockUpstream,
    reply: JSONReply | RawReply,
    exception: type[anthropic.APIStatusError],
    error_type: str,
) -> None:
    claude.enqueue(reply)
    with pytest.raises(exception) as caught:
        client.messages.create(
            model="claude-native", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    body = caught.value.body
    assert isinstance(body, dict) and body["error"]["type"] == error_type
    assert (caught.value.status_code == 529) == (error_type == "overloaded_error")
    assert PROVIDER_KEY not in caught.value.response.text
    if error_type == "rate_limit_error":
        assert caught.value.response.headers["retry-after"] == "30"


def test_a_stream_that_fails_after_it_began_ends_with_an_error_event(
    gateway: GatewayServer, claude: MockUpstream
) -> None:
    events = sse_events("stream_text.sse")
    claude.enqueue(SSEReply(events, cut_after=4, send_done=False))
    answer = httpx.post(
        f"{gateway.url}/v1/messages",
        json={
            "model": "claude-native",
            "max_tokens": 50,
            "stream": True,
            "messages": [{"role": "user", "content": "Hello"}],
        },
    )
    got = events_of(answer.text)
    assert got[0][0] == "message_start"
    kind, error = got[-1]
    assert kind == "error"
    assert error["type"] == "error" and error["error"]["type"] == "api_error"
    assert "closed the connection" in error["error"]["message"]


def test_the_sdk_raises_on_a_mid_stream_error_event(
    client: anthropic.Anthropic, claude: MockUpstream
) -> None:
    events = sse_events("stream_text.sse")
    overloaded = json.dumps(anthropic_error("overloaded_error", "Overloaded"))
    error = f"event: error\ndata: {overloaded}\n\n"
    claude.enqueue(SSEReply([*events[:4], error], send_done=False))
    stream = client.messages.stream(
        model="claude-native", max_tokens=50, messages=[{"role": "user", "content": "Hello"}]
    )
    with pytest.raises(anthropic.APIStatusError) as caught, stream as events:
        for _ in events:
            pass
    assert "Overloaded" in str(caught.value)


# --------------------------------------------------------------------------- auth


SIM = {"provider": "sim", "model": "s", "input_per_mtok": 1, "output_per_mtok": 1}


@pytest.fixture(scope="module")
def keyed_gateway() -> Iterator[GatewayServer]:
    import hashlib

    def digest(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    config = {
        "store": "memory://",
        "auth": {
            "keys": [
                {"name": "cli", "key_sha256": digest("sb-cli-key"), "allowed_models": ["claude-*"]},
            ]
        },
        "providers": {"sim": {"kind": "simulated"}},
        "models": {
            "claude-sim": {"deployments": [SIM]},
            "other": {"deployments": [SIM]},
        },
        "limits": {"max_request_bytes": 4000, "max_json_depth": 16},
    }
    server = GatewayServer(config).start()
    yield server
    server.stop()


def test_the_gateway_key_works_as_x_api_key_or_bearer(keyed_gateway: GatewayServer) -> None:
    request: dict[str, Any] = {
        "model": "claude-sim",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}],
    }
    with anthropic.Anthropic(
        base_url=keyed_gateway.url, api_key="sb-cli-key", max_retries=0
    ) as sdk:
        assert sdk.messages.create(**request).content
        with pytest.raises(anthropic.PermissionDeniedError) as denied:
            sdk.messages.create(**{**request, "model": "other"})
        assert isinstance(denied.value.body, dict)
        assert denied.value.body["error"]["type"] == "permission_error"
        assert sdk.messages.count_tokens(
            model="claude-sim", messages=request["messages"]
        ).input_tokens
    with anthropic.Anthropic(
        base_url=keyed_gateway.url, auth_token="sb-cli-key", api_key=None, max_retries=0
    ) as sdk:
        assert sdk.messages.create(**request).content
    with anthropic.Anthropic(base_url=keyed_gateway.url, api_key="wrong", max_retries=0) as sdk:
        with pytest.raises(anthropic.AuthenticationError) as refused:
            sdk.messages.create(**request)
        assert isinstance(refused.value.body, dict)
        assert refused.value.body["error"]["type"] == "authentication_error"


def test_input_limits_answer_in_anthropics_shape(keyed_gateway: GatewayServer) -> None:
    headers = {"x-api-key": "sb-cli-key", "content-type": "application/json"}
    big = {
        "model": "claude-sim",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x" * 5000}],
    }
    too_large = httpx.post(f"{keyed_gateway.url}/v1/messages", json=big, headers=headers)
    assert too_large.status_code == 413
    assert too_large.json()["error"]["type"] == "request_too_large"
    deep: Any = "x"
    for _ in range(20):
        deep = [deep]
    nested = {
        "model": "claude-sim",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": deep}],
    }
    too_deep = httpx.post(f"{keyed_gateway.url}/v1/messages", json=nested, headers=headers)
    assert too_deep.status_code == 400
    assert too_deep.json()["error"]["type"] == "invalid_request_error"
    assert too_deep.headers["x-switchboard-error-code"] == "json_too_deep"


def test_a_provider_key_echoed_in_a_mid_stream_error_is_not_passed_on(
    gateway: GatewayServer, claude: MockUpstream
) -> None:
    events = sse_events("stream_text.sse")
    echoed = json.dumps(anthropic_error("overloaded_error", f"key {PROVIDER_KEY} overloaded"))
    claude.enqueue(SSEReply([*events[:4], f"event: error\ndata: {echoed}\n\n"], send_done=False))
    answer = httpx.post(
        f"{gateway.url}/v1/messages",
        json={
            "model": "claude-native",
            "max_tokens": 50,
            "stream": True,
            "messages": [{"role": "user", "content": "Hello"}],
        },
    )
    kind, error = events_of(answer.text)[-1]
    assert (kind, error["error"]["type"]) == ("error", "overloaded_error")
    assert PROVIDER_KEY not in answer.text
