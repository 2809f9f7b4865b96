"""The gateway end to end in front of an Anthropic-speaking upstream.

The official `openai` SDK talks to the real gateway on a loopback socket; the gateway's
`kind: anthropic` provider talks to a mock upstream that answers in Anthropic's wire
format (tests/fixtures/anthropic). Each test checks what the SDK user sees and exactly
what reached Anthropic: path, query, headers and body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pydantic
import pytest

from tests.gateway_server import GatewayServer, metadata_of
from tests.mock_upstream import JSONReply, MockUpstream, RawReply, SSEReply

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
PROVIDER_KEY = "sk-ant-api03-e2e-secret"
MODEL = "claude-sonnet-4-20250514"
HAIKU = "claude-3-5-haiku-20241022"
PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg"
    "=="
)
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def sse_events(name: str) -> list[dict[str, Any] | str | bytes]:
    """A recorded stream, one item per SSE event, so the mock writes them one by one."""
    text = (FIXTURES / name).read_text()
    return [event + "\n\n" for event in text.split("\n\n") if event.strip()]


def anthropic_error(error_type: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
    }


@pytest.fixture(scope="module")
def gateway(shared_upstream: MockUpstream) -> Iterator[GatewayServer]:
    config = {
        "auth": "none",
        "store": "memory://",
        "providers": {
            "claude": {
                "kind": "anthropic",
                "base_url": f"http://127.0.0.1:{shared_upstream.port}",
                "api_key": PROVIDER_KEY,
            }
        },
        "models": {
            "sonnet": {
                "deployments": [
                    {
                        "provider": "claude",
                        "model": MODEL,
                        "input_per_mtok": 3,
                        "output_per_mtok": 15,
                        "cached_input_per_mtok": 0.3,
                    }
                ]
            },
            # prices and capabilities (no extended thinking) from the model catalogue
            "haiku": {"deployments": [{"provider": "claude", "model": HAIKU}]},
        },
    }
    server = GatewayServer(config).start()
    yield server
    server.stop()


@pytest.fixture
def client(gateway: GatewayServer, upstream: MockUpstream) -> Iterator[openai.OpenAI]:
    with gateway.sdk("sk-client-key") as sdk:
        yield sdk


def assert_sent(upstream: MockUpstream, body: dict[str, Any], *, stream: bool = False) -> None:
    """Exactly one call reached Anthropic, and it is this one."""
    assert len(upstream.requests) == 1
    sent = upstream.last_request
    assert (sent.method, sent.path, sent.query) == ("POST", "/v1/messages", {})
    headers = {k: v for k, v in sent.headers.items() if k not in _TRANSPORT_HEADERS}
    # the request id goes along as a header, and in the one body field the API keeps
    request_id = headers.pop("x-request-id")
    assert headers == {
        "x-api-key": PROVIDER_KEY,
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
        "accept": "text/event-stream" if stream else "application/json",
    }
    if "metadata" not in body:
        assert sent.json["metadata"] == {"user_id": request_id}
        body = {**body, "metadata": {"user_id": request_id}}
    assert sent.json == body


# what the HTTP client adds on its own
_TRANSPORT_HEADERS = {"host", "content-length", "user-agent", "accept-encoding"}


# --------------------------------------------------------------------------- answers


def test_text_completion(client: openai.OpenAI, upstream: MockUpstream) -> None:
    upstream.enqueue(JSONReply(fixture("response_text_cached.json")["anthropic"]))
    raw = client.chat.completions.with_raw_response.create(
        model="sonnet",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello"},
        ],
        max_tokens=100,
        temperature=0.5,
        stop=["###"],
        seed=42,
        user="user-7",
    )
    response = raw.parse()

    assert response.id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert response.model == MODEL
    assert response.choices[0].message.content == "Hello! How can I help you today?"
    assert response.choices[0].finish_reason == "stop"
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (1233, 12)
    assert response.usage.prompt_tokens_details is not None
    assert response.usage.prompt_tokens_details.cached_tokens == 1024
    metadata = metadata_of(response)
    assert (metadata["provider"], metadata["provider_model_id"]) == ("claude", MODEL)
    cost = metadata["cost"]
    # uncached prompt tokens at the input price, cache reads at the cached price
    assert cost["input_usd"] == pytest.approx((209 * 3 + 1024 * 0.3) / 1e6)
    assert cost["output_usd"] == pytest.approx(12 * 15 / 1e6)
    assert cost["estimated"] is False
    assert raw.headers["x-switchboard-provider"] == "claude"
    assert raw.headers["x-switchboard-dropped-params"] == "seed"
    assert PROVIDER_KEY not in raw.http_response.text

    assert_sent(
        upstream,
        {
            "model": MODEL,
            "max_tokens": 100,
            "system": "Be brief.",
            "messages": [{"role": "user", "content": "Hello"}],
            "stop_sequences": ["###"],
            "temperature": 0.5,
            "metadata": {"user_id": "user-7"},
        },
    )


def test_streamed_text(client: openai.OpenAI, upstream: MockUpstream) -> None:
    upstream.enqueue(SSEReply(sse_events("stream_text.sse"), send_done=False))
    chunks = list(
        client.chat.completions.create(
            model="sonnet",
            messages=[{"role": "user", "content": "Hello"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello!"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (25, 15)
    assert metadata_of(last)["cost"]["estimated"] is False
    assert {c.id for c in chunks} == {"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY"}

    assert_sent(
        upstream,
        {
            "model": MODEL,
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": "Hello"}],
            "stream": True,
        },
        stream=True,
    )


def test_streamed_parallel_tool_calls(client: openai.OpenAI, upstream: MockUpstream) -> None:
    upstream.enqueue(SSEReply(sse_events("stream_tool_use.sse"), send_done=False))
    with client.chat.completions.stream(
        model="sonnet",
        messages=[{"role": "user", "content": "Weather in Paris and Tokyo?"}],
        tools=[WEATHER_TOOL],
        parallel_tool_calls=True,
    ) as stream:
        final = stream.get_final_completion()

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Okay, checking both."
    calls = choice.message.tool_calls or []
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather", {"location": "Paris"}),
        ("toolu_02Ab3Xq9Lw0pKx7sTyNa1Zc4", "get_weather", {"location": "Tokyo"}),
    ]
    assert final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (2405, 89)

    assert_sent(
        upstream,
        {
            "model": MODEL,
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": "Weather in Paris and Tokyo?"}],
            "tools": [
                {
                    "name": "get_weather",
                    "description": "Current weather in a city",
                    "input_schema": WEATHER_TOOL["function"]["parameters"],
                }
            ],
            "stream": True,
        },
        stream=True,
    )


def test_image_input(client: openai.OpenAI, upstream: MockUpstream) -> None:
    upstream.enqueue(JSONReply(fixture("response_text_cached.json")["anthropic"]))
    client.chat.completions.create(
        model="sonnet",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare these."},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            }
        ],
    )
    image_blocks = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    assert_sent(
        upstream,
        {
            "model": MODEL,
            "max_tokens": 4096,
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Compare these."}, *image_blocks],
                }
            ],
        },
    )


class Person(pydantic.BaseModel):
    name: str
    age: int


def test_json_schema_answer(client: openai.OpenAI, upstream: MockUpstream) -> None:
    answer = fixture("response_json_schema.json")["anthropic"]
    answer["content"][0]["name"] = "Person"  # the SDK names the schema after the model
    upstream.enqueue(JSONReply(answer))
    completion = client.chat.completions.parse(
        model="sonnet",
        messages=[{"role": "user", "content": "Extract: Alice is 30."}],
        response_format=Person,
    )

    message = completion.choices[0].message
    assert message.parsed == Person(name="Alice", age=30)
    assert message.content == '{"name":"Alice","age":30}'
    assert message.tool_calls in (None, [])
    assert completion.choices[0].finish_reason == "stop"

    sent = upstream.last_request.json
    assert sent["tool_choice"] == {"type": "tool", "name": "Person"}
    (tool,) = sent["tools"]
    assert tool["name"] == "Person"
    assert tool["input_schema"]["properties"] == {
        "name": {"title": "Name", "type": "string"},
        "age": {"title": "Age", "type": "integer"},
    }
    assert tool["input_schema"]["required"] == ["name", "age"]
    assert_sent(
        upstream,
        {
            "model": MODEL,
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": "Extract: Alice is 30."}],
            "tools": [tool],
            "tool_choice": {"type": "tool", "name": "Person"},
        },
    )


def test_reasoning_effort_becomes_thinking(client: openai.OpenAI, upstream: MockUpstream) -> None:
    upstream.enqueue(JSONReply(fixture("response_thinking.json")["anthropic"]))
    raw = client.chat.completions.with_raw_response.create(
        model="sonnet",
        messages=[{"role": "user", "content": "Prove it."}],
        reasoning_effort="low",
        max_completion_tokens=800,
    )
    message = raw.parse().choices[0].message
    assert message.content == "Yes, there are infinitely many such primes."
    assert (message.model_extra or {})["reasoning_content"] == "Let me analyze this step by step..."
    assert "x-switchboard-dropped-params" not in raw.headers
    assert_sent(
        upstream,
        {
            "model": MODEL,
            "max_tokens": 1824,  # the client's 800 on top of the 1024-token budget
            "messages": [{"role": "user", "content": "Prove it."}],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
        },
    )


def test_model_without_thinking_drops_reasoning_effort(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    answer = {**fixture("response_text_cached.json")["anthropic"], "model": HAIKU}
    upstream.enqueue(JSONReply(answer))
    raw = client.chat.completions.with_raw_response.create(
        model="haiku",
        messages=[{"role": "user", "content": "Hello"}],
        reasoning_effort="high",
        temperature=0.2,
    )
    assert raw.parse().choices[0].message.content == "Hello! How can I help you today?"
    assert raw.headers["x-switchboard-dropped-params"] == "reasoning_effort"
    assert_sent(
        upstream,
        {
            "model": HAIKU,
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": "Hello"}],
            "temperature": 0.2,
        },
    )


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "headers", "body", "client_status", "error_type", "code", "says"),
    [
        (
            429,
            {"retry-after": "30"},
            anthropic_error("rate_limit_error", "Number of requests has exceeded your rate limit"),
            429,
            "rate_limit_error",
            "upstream_rate_limited",
            "Number of requests has exceeded your rate limit",
        ),
        (
            529,
            {},
            anthropic_error("overloaded_error", "Overloaded"),
            502,
            "api_error",
            "upstream_unavailable",
            "Overloaded",
        ),
        (
            500,
            {},
            anthropic_error("api_error", "Internal server error"),
            502,
            "api_error",
            "upstream_unavailable",
            "Internal server error",
        ),
        (
            400,
            {},
            anthropic_error(
                "invalid_request_error",
                "max_tokens: 100000 > 64000, which is the maximum allowed number of output "
                "tokens for claude-sonnet-4-20250514",
            ),
            400,
            "invalid_request_error",
            "upstream_rejected_request",
            "max_tokens: 100000 > 64000",
        ),
        (
            401,
            {},
            anthropic_error("authentication_error", "invalid x-api-key"),
            502,
            "api_error",
            "upstream_auth_failed",
            "refused the gateway's credentials",
        ),
    ],
    ids=["rate_limited", "overloaded", "server_error", "invalid_request", "auth"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_provider_errors(
    gateway: GatewayServer,
    upstream: MockUpstream,
    status: int,
    headers: dict[str, str],
    body: dict[str, Any],
    client_status: int,
    error_type: str,
    code: str,
    says: str,
    stream: bool,
) -> None:
    # every attempt gets the same answer, however many the dispatcher makes
    upstream.set_default(RawReply(json.dumps(body).encode(), status=status, headers=headers))
    response = gateway.post(
        {"model": "sonnet", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    )

    assert response.status_code == client_status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert (error["type"], error["code"]) == (error_type, code)
    assert says in error["message"]
    if status == 429:
        assert response.headers["retry-after"] == "30"
    assert PROVIDER_KEY not in response.text
    assert upstream.requests and all(r.path == "/v1/messages" for r in upstream.requests)


def test_untranslatable_request_is_a_400_naming_the_part(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    response = gateway.post(
        {
            "model": "sonnet",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is said here?"},
                        {
                            "type": "input_audio",
                            "input_audio": {"data": "UklGRg==", "format": "wav"},
                        },
                    ],
                }
            ],
        }
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "unsupported_content",
        "messages[0].content[1]",
    )
    assert upstream.requests == []  # refused before anything was sent
