"""`POST /v1/messages` to Bedrock end to end: the `anthropic` SDK against the real
gateway; its `kind: bedrock` provider in front of a mock that speaks Bedrock's wire
format. Claude models get the client's body in Bedrock's native Anthropic shape
(InvokeModel, InvokeModelWithResponseStream, CountTokens), SigV4-signed; other models
are translated onto Converse like any chat request.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anthropic
import httpx
import pytest

from tests.bedrock_helpers import event_frame, exception_frame, expected_authorization, load
from tests.gateway_server import GatewayServer
from tests.mock_upstream import JSONReply, MockUpstream, RawReply
from tests.test_messages_e2e import anthropic_fixture, events_of

REGION = "us-east-1"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-pro-v1:0"
EVENT_STREAM = "application/vnd.amazon.eventstream"
_TRANSPORT_HEADERS = {"host", "content-length", "user-agent", "accept-encoding"}


@pytest.fixture(scope="module")
def gateway(shared_upstream: MockUpstream) -> Iterator[GatewayServer]:
    config = {
        "auth": "none",
        "store": "memory://",
        "providers": {
            "aws": {
                "kind": "bedrock",
                "region": REGION,
                "base_url": f"http://127.0.0.1:{shared_upstream.port}",
                "access_key_id": ACCESS_KEY,
                "secret_access_key": SECRET_KEY,
            }
        },
        "models": {
            "claude-bedrock": {
                "deployments": [
                    {"provider": "aws", "model": CLAUDE, "input_per_mtok": 3, "output_per_mtok": 15}
                ]
            },
            "nova": {
                "deployments": [
                    {
                        "provider": "aws",
                        "model": NOVA,
                        "input_per_mtok": 0.8,
                        "output_per_mtok": 3.2,
                    }
                ]
            },
        },
    }
    server = GatewayServer(config).start()
    yield server
    server.stop()


@pytest.fixture
def client(gateway: GatewayServer, upstream: MockUpstream) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway.url, api_key="k", max_retries=0, timeout=10) as sdk:
        yield sdk


def chunk_frames(events: list[dict[str, Any]]) -> bytes:
    """An invoke-with-response-stream body: each Messages event's JSON, base64, in a
    `chunk` event's `bytes` (Bedrock user guide, InvokeModelWithResponseStream)."""
    return b"".join(
        event_frame("chunk", {"bytes": base64.b64encode(json.dumps(e).encode()).decode()})
        for e in events
    )


def messages_events(name: str) -> list[dict[str, Any]]:
    """The data of a recorded Anthropic stream's events."""
    text = (Path(__file__).parent / "fixtures" / "anthropic" / name).read_text()
    return [
        json.loads(line.removeprefix("data: "))
        for line in text.splitlines()
        if line.startswith("data: ")
    ]


def assert_signed(upstream: MockUpstream, operation: str, accept: str) -> Any:
    sent = upstream.last_request
    assert (sent.method, sent.path) == ("POST", f"/model/{CLAUDE}/{operation}")
    assert sent.raw_path == f"/model/{quote(CLAUDE, safe='-._~')}/{operation}"
    headers = {k: v for k, v in sent.headers.items() if k not in _TRANSPORT_HEADERS}
    assert headers["accept"] == accept
    assert headers["authorization"] == expected_authorization(
        sent.method,
        f"http://127.0.0.1:{upstream.port}{sent.raw_path}",
        sent.headers,
        sent.body,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        token=None,
        region=REGION,
    )
    return sent


def test_invoke_model_with_the_native_body(
    client: anthropic.Anthropic, upstream: MockUpstream
) -> None:
    upstream.enqueue(JSONReply(anthropic_fixture("response_tool_use.json")))
    raw = client.messages.with_raw_response.create(
        model="claude-bedrock",
        max_tokens=300,
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}],
            }
        ],
        extra_headers={"anthropic-beta": "context-1m-2025-08-07"},
    )
    message = raw.parse()
    assert [b.type for b in message.content] == ["text", "tool_use", "tool_use"]
    assert raw.headers["x-switchboard-provider"] == "aws"
    assert raw.headers["x-switchboard-model"] == CLAUDE
    sent = assert_signed(upstream, "invoke", "application/json")
    assert sent.json == {
        "max_tokens": 300,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}],
            }
        ],
        "anthropic_version": "bedrock-2023-05-31",
        "anthropic_beta": ["context-1m-2025-08-07"],
    }
    assert SECRET_KEY not in raw.http_response.text


def test_invoke_model_with_response_stream(
    client: anthropic.Anthropic, upstream: MockUpstream
) -> None:
    events = messages_events("stream_tool_use.sse")
    # Bedrock adds its invocation metrics to the last event
    events[-1]["amazon-bedrock-invocationMetrics"] = {
        "inputTokenCount": 2405,
        "outputTokenCount": 89,
        "invocationLatency": 1500,
        "firstByteLatency": 300,
    }
    upstream.enqueue(RawReply(chunk_frames(events), content_type=EVENT_STREAM))
    with client.messages.stream(
        model="claude-bedrock", max_tokens=500, messages=[{"role": "user", "content": "Weather?"}]
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert final.usage.output_tokens == 89
    sent = assert_signed(upstream, "invoke-with-response-stream", EVENT_STREAM)
    assert "stream" not in sent.json and "model" not in sent.json


def test_the_stream_wire_keeps_bedrocks_events(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    events = messages_events("stream_text.sse")
    events[-1]["amazon-bedrock-invocationMetrics"] = {"inputTokenCount": 25, "outputTokenCount": 15}
    upstream.enqueue(RawReply(chunk_frames(events), content_type=EVENT_STREAM))
    answer = httpx.post(
        f"{gateway.url}/v1/messages",
        json={
            "model": "claude-bedrock",
            "max_tokens": 50,
            "stream": True,
            "messages": [{"role": "user", "content": "Hello"}],
        },
    )
    got = events_of(answer.text)
    assert [data for _, data in got[:-1]] == events[:-1]
    kind, stop = got[-1]
    assert kind == "message_stop"
    metadata = stop.pop("routing_metadata")
    assert stop == events[-1]  # Bedrock's metrics kept, as Bedrock sent them
    assert metadata["cost"]["usd"] == pytest.approx((25 * 3 + 15 * 15) / 1e6)


def test_a_refused_beta_flag_is_dropped(
    client: anthropic.Anthropic, upstream: MockUpstream
) -> None:
    upstream.enqueue(
        JSONReply(
            {"message": "invalid beta flag"},
            status=400,
            headers={"x-amzn-errortype": "ValidationException"},
        ),
        JSONReply(anthropic_fixture("response_text_cached.json")),
    )
    raw = client.messages.with_raw_response.create(
        model="claude-bedrock",
        max_tokens=100,
        messages=[{"role": "user", "content": "Hello"}],
        extra_headers={"anthropic-beta": "claude-code-20250219"},
    )
    assert raw.headers["x-switchboard-dropped-params"] == "anthropic-beta:claude-code-20250219"
    first, second = upstream.requests
    assert first.json["anthropic_beta"] == ["claude-code-20250219"]
    assert "anthropic_beta" not in second.json


def test_a_mid_stream_exception_ends_with_an_error_event(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    events = messages_events("stream_text.sse")[:3]
    body = chunk_frames(events) + exception_frame(
        "throttlingException", {"message": "Too many tokens, please wait before trying again."}
    )
    upstream.enqueue(RawReply(body, content_type=EVENT_STREAM))
    answer = httpx.post(
        f"{gateway.url}/v1/messages",
        json={
            "model": "claude-bedrock",
            "max_tokens": 50,
            "stream": True,
            "messages": [{"role": "user", "content": "Hello"}],
        },
    )
    got = events_of(answer.text)
    assert got[0][0] == "message_start"
    kind, error = got[-1]
    assert (kind, error["error"]["type"]) == ("error", "rate_limit_error")


def test_count_tokens_through_bedrock(client: anthropic.Anthropic, upstream: MockUpstream) -> None:
    upstream.enqueue(JSONReply({"inputTokens": 17}))
    raw = client.messages.with_raw_response.count_tokens(
        model="claude-bedrock", messages=[{"role": "user", "content": "Hello"}]
    )
    assert raw.parse().input_tokens == 17
    assert raw.headers["x-switchboard-token-count"] == "native"
    sent = assert_signed(upstream, "count-tokens", "application/json")
    counted = json.loads(base64.b64decode(sent.json["input"]["invokeModel"]["body"]))
    assert counted == {
        "messages": [{"role": "user", "content": "Hello"}],
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 1,
    }


def test_other_bedrock_models_are_translated_onto_converse(
    client: anthropic.Anthropic, upstream: MockUpstream
) -> None:
    upstream.enqueue(JSONReply(load("response_text.json")["bedrock"]))
    message = client.messages.create(
        model="nova",
        max_tokens=50,
        system="Be brief.",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "Oslo is 12 °C and clear."
    sent = upstream.last_request
    assert sent.path == f"/model/{NOVA}/converse"
    assert sent.json["system"] == [{"text": "Be brief."}]
