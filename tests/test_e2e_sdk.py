"""The gateway end to end, with the official `openai` SDK as the client.

Every test runs the real app under uvicorn on a loopback socket in front of a scripted
mock upstream, so what is checked is what an SDK user sees: parsed objects, the
`routing_metadata` extra, the gateway's headers, and what reached the provider.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from tests.gateway_server import GatewayServer, metadata_of, upstream_config
from tests.mock_upstream import (
    DEFAULT_PIECES,
    DEFAULT_TEXT,
    ErrorReply,
    JSONReply,
    MockUpstream,
    SSEReply,
    chunk,
    completion,
    make_usage,
    usage_chunk,
)

UPSTREAM_KEY = "sk-upstream-secret"
INPUT_PER_MTOK = 2.0
OUTPUT_PER_MTOK = 8.0
# the mock counts one prompt token per word of the messages' contents
PROMPT = "Say hello to the nice people"
PROMPT_WORDS = len(PROMPT.split())
USER_MESSAGES: list[Any] = [{"role": "user", "content": PROMPT}]

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}


# --------------------------------------------------------------------------- fixtures


# One gateway per module over the module's upstream (`shared_upstream`); `upstream`
# is that server cleared for each test.
@pytest.fixture(scope="module")
def gateway(shared_upstream: MockUpstream) -> Iterator[GatewayServer]:
    server = GatewayServer(upstream_config(shared_upstream.url)).start()
    yield server
    server.stop()


@pytest.fixture
def client(gateway: GatewayServer) -> Iterator[openai.OpenAI]:
    with gateway.sdk("sk-client-key") as sdk:
        yield sdk


def async_client(gateway: GatewayServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key="sk-client-key", max_retries=0, timeout=10
    )


# --------------------------------------------------------------------------- helpers


def assert_cost(cost: dict[str, Any], prompt_tokens: int, completion_tokens: int) -> None:
    """The cost is the upstream's usage times the deployment's prices (USD per Mtok)."""
    input_usd = prompt_tokens * INPUT_PER_MTOK / 1_000_000
    output_usd = completion_tokens * OUTPUT_PER_MTOK / 1_000_000
    assert cost["input_usd"] == pytest.approx(input_usd, rel=1e-9)
    assert cost["output_usd"] == pytest.approx(output_usd, rel=1e-9)
    assert cost["usd"] == pytest.approx(input_usd + output_usd, rel=1e-9)
    assert cost["estimated"] is False


def assert_metadata(
    metadata: dict[str, Any],
    *,
    request_id: str,
    prompt_tokens: int,
    completion_tokens: int,
    strategy: str = "balanced",
) -> None:
    assert metadata["provider"] == "mock"
    assert metadata["provider_model_id"] == "upstream-model-id"
    assert metadata["model_canonical"] == "test-model"
    assert metadata["routing_strategy"] == strategy
    assert_cost(metadata["cost"], prompt_tokens, completion_tokens)
    assert metadata["latency_ms"] > 0
    assert metadata["attempts"] == []
    assert metadata["request_id"] == request_id


def assert_success_headers(headers: httpx.Headers, cost_usd: float | None) -> None:
    assert headers["x-switchboard-provider"] == "mock"
    assert headers["x-switchboard-model"] == "upstream-model-id"
    if cost_usd is not None:
        assert float(headers["x-switchboard-cost-usd"]) == pytest.approx(cost_usd, rel=1e-9)


def stream_options_kwargs(client_asks_usage: bool) -> dict[str, Any]:
    return {"stream_options": {"include_usage": True}} if client_asks_usage else {}


def assert_streamed_answer(chunks: list[ChatCompletionChunk], request_id: str) -> None:
    """The default mock stream, reassembled, closed by one usage + metadata chunk."""
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == DEFAULT_TEXT
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    *body, last = chunks
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.prompt_tokens == PROMPT_WORDS
    assert last.usage.completion_tokens == len(DEFAULT_PIECES)
    for earlier in body:
        assert "routing_metadata" not in (earlier.model_extra or {})
    metadata = metadata_of(last)
    assert_metadata(
        metadata,
        request_id=request_id,
        prompt_tokens=PROMPT_WORDS,
        completion_tokens=len(DEFAULT_PIECES),
    )
    assert metadata["ttft_ms"] is not None
    assert 0 < metadata["ttft_ms"] <= metadata["latency_ms"]


# --------------------------------------------------------------------------- completions


def test_completion_sync(client: openai.OpenAI, upstream: MockUpstream) -> None:
    upstream.enqueue(
        JSONReply(completion("Paris.", usage=make_usage(prompt_tokens=1234, completion_tokens=567)))
    )
    raw = client.chat.completions.with_raw_response.create(
        model="test-model", messages=USER_MESSAGES
    )
    response = raw.parse()

    assert response.choices[0].message.content == "Paris."
    assert response.choices[0].finish_reason == "stop"
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (1234, 567)
    assert response.usage.total_tokens == 1801
    metadata = metadata_of(response)
    assert_metadata(
        metadata,
        request_id=raw.headers["x-request-id"],
        prompt_tokens=1234,
        completion_tokens=567,
    )
    assert metadata["cost"]["usd"] == pytest.approx(0.002468 + 0.004536)
    assert_success_headers(raw.headers, metadata["cost"]["usd"])


async def test_completion_async(gateway: GatewayServer, upstream: MockUpstream) -> None:
    upstream.enqueue(
        JSONReply(completion("Lyon.", usage=make_usage(prompt_tokens=40, completion_tokens=3)))
    )
    async with async_client(gateway) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="test-model", messages=USER_MESSAGES
        )
        response = raw.parse()

    assert response.choices[0].message.content == "Lyon."
    assert response.choices[0].finish_reason == "stop"
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (40, 3)
    metadata = metadata_of(response)
    assert_metadata(
        metadata, request_id=raw.headers["x-request-id"], prompt_tokens=40, completion_tokens=3
    )
    assert_success_headers(raw.headers, metadata["cost"]["usd"])


# --------------------------------------------------------------------------- streams


@pytest.mark.parametrize("client_asks_usage", [True, False], ids=["include_usage", "no_options"])
def test_stream_sync(
    client: openai.OpenAI, upstream: MockUpstream, client_asks_usage: bool
) -> None:
    # the default SSEReply sends a usage chunk only when the request asked for one,
    # so a usage chunk here proves the gateway asked upstream for it
    raw = client.chat.completions.with_raw_response.create(
        model="test-model",
        messages=USER_MESSAGES,
        stream=True,
        **stream_options_kwargs(client_asks_usage),
    )
    assert_success_headers(raw.headers, cost_usd=None)
    chunks = list(raw.parse())

    assert_streamed_answer(chunks, request_id=raw.headers["x-request-id"])
    assert upstream.last_request.json["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("client_asks_usage", [True, False], ids=["include_usage", "no_options"])
async def test_stream_async(
    gateway: GatewayServer, upstream: MockUpstream, client_asks_usage: bool
) -> None:
    async with async_client(gateway) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="test-model",
            messages=USER_MESSAGES,
            stream=True,
            **stream_options_kwargs(client_asks_usage),
        )
        stream = raw.parse()
        chunks = [c async for c in stream]

    assert_success_headers(raw.headers, cost_usd=None)
    assert_streamed_answer(chunks, request_id=raw.headers["x-request-id"])


# --------------------------------------------------------------------------- tools


def test_tool_call_round_trip(client: openai.OpenAI, upstream: MockUpstream) -> None:
    call = {
        "id": "call_abc123",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Oslo", "unit": "c"}'},
    }
    upstream.enqueue(
        JSONReply(completion(content=None, tool_calls=[call])),
        JSONReply(completion("It is 3 degrees in Oslo.")),
    )

    first = client.chat.completions.create(
        model="test-model",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER_TOOL],
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    [tool_call] = choice.message.tool_calls
    assert tool_call.model_dump() == call

    messages: list[Any] = [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [tool_call.model_dump()],
        },
        {"role": "tool", "tool_call_id": tool_call.id, "content": '{"temp_c": 3}'},
    ]
    second = client.chat.completions.create(
        model="test-model", messages=messages, tools=[WEATHER_TOOL]
    )
    assert second.choices[0].message.content == "It is 3 degrees in Oslo."

    first_sent, second_sent = (r.json for r in upstream.requests)
    assert first_sent["tools"] == [WEATHER_TOOL]
    assert second_sent["messages"] == messages
    assert second_sent["messages"][1]["tool_calls"][0]["function"]["arguments"] == (
        '{"city": "Oslo", "unit": "c"}'
    )
    assert second_sent["messages"][2]["tool_call_id"] == "call_abc123"


def _tool_call_deltas(index: int, call_id: str, name: str, arguments: str) -> list[dict[str, Any]]:
    """One tool call as OpenAI streams it: id and name first, then arguments in pieces."""
    head = {
        "index": index,
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": ""},
    }
    pieces = [arguments[i : i + 3] for i in range(0, len(arguments), 3)]
    return [head] + [{"index": index, "function": {"arguments": p}} for p in pieces]


def test_streamed_parallel_tool_calls(client: openai.OpenAI, upstream: MockUpstream) -> None:
    weather_args = json.dumps({"city": "Oslo", "unit": "celsius"})
    time_args = json.dumps({"tz": "Europe/Oslo"})
    deltas = _tool_call_deltas(0, "call_weather", "get_weather", weather_args)
    deltas += _tool_call_deltas(1, "call_time", "get_time", time_args)
    chunks: list[dict[str, Any] | str | bytes] = [chunk(role="assistant")]
    chunks += [chunk(tool_calls=[d]) for d in deltas]
    chunks += [
        chunk(finish_reason="tool_calls"),
        usage_chunk(make_usage(prompt_tokens=30, completion_tokens=len(deltas))),
    ]
    upstream.enqueue(SSEReply(chunks))

    with client.chat.completions.stream(
        model="test-model",
        messages=[{"role": "user", "content": "Weather and time in Oslo?"}],
        tools=[WEATHER_TOOL, TIME_TOOL],
        parallel_tool_calls=True,
    ) as stream:
        final = stream.get_final_completion()

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    summary = [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls]
    assert summary == [
        ("call_weather", "get_weather", {"city": "Oslo", "unit": "celsius"}),
        ("call_time", "get_time", {"tz": "Europe/Oslo"}),
    ]
    assert calls[0].function.arguments == weather_args
    assert final.usage is not None and final.usage.completion_tokens == len(deltas)
    assert upstream.last_request.json["parallel_tool_calls"] is True


# --------------------------------------------------------------------------- identity and keys


def _assert_no_secret(response: httpx.Response) -> None:
    assert UPSTREAM_KEY not in response.text
    for name, value in response.headers.items():
        assert UPSTREAM_KEY not in value, f"provider key leaked in header {name}"


def test_request_id_echoed_and_provider_key_stays_upstream(
    client: openai.OpenAI, gateway: GatewayServer, upstream: MockUpstream
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="test-model",
        messages=USER_MESSAGES,
        extra_headers={"x-request-id": "trace-42.abc"},
    )
    assert raw.headers["x-request-id"] == "trace-42.abc"
    assert metadata_of(raw.parse())["request_id"] == "trace-42.abc"
    _assert_no_secret(raw.http_response)

    seen = upstream.last_request
    assert seen.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert "sk-client-key" not in json.dumps(seen.headers)

    # a stream, and an upstream error that quotes the key, must not leak it either
    streamed = gateway.post(
        {"model": "test-model", "messages": USER_MESSAGES, "stream": True},
        headers={"x-request-id": "trace-43"},
    )
    assert streamed.status_code == 200
    assert streamed.headers["x-request-id"] == "trace-43"
    _assert_no_secret(streamed)
    assert upstream.last_request.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"

    upstream.enqueue(
        ErrorReply(401, f"Incorrect API key provided: {UPSTREAM_KEY}.", code="invalid_api_key")
    )
    refused = gateway.post({"model": "test-model", "messages": USER_MESSAGES})
    assert refused.status_code >= 400
    assert "error" in refused.json()
    _assert_no_secret(refused)


# --------------------------------------------------------------------------- models


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    listed = client.models.list()
    assert [m.id for m in listed.data] == ["test-model"]
    assert listed.data[0].object == "model"

    model = client.models.retrieve("test-model")
    assert model.id == "test-model"
    deployments = (model.model_extra or {})["deployments"]
    # live parts first: no traffic yet, so healthy and no statistics
    assert [(d.pop("health"), d.pop("price_source")) for d in deployments] == [
        ("healthy", "config")
    ]
    assert deployments[0].pop("stats")["requests"] == 0
    assert deployments == [
        {
            "provider": "mock",
            "model": "upstream-model-id",
            "input_per_mtok": INPUT_PER_MTOK,
            "output_per_mtok": OUTPUT_PER_MTOK,
            "cached_input_per_mtok": INPUT_PER_MTOK,  # no cached price set: the input price
            "capabilities": {
                "tools": True,
                "vision": True,
                "json_schema": True,
                "reasoning": False,
                "logprobs": True,
                "multiple_choices": True,
                "context_window": None,
                "max_output_tokens": None,
            },
        }
    ]


def test_unknown_model_is_not_found(client: openai.OpenAI, upstream: MockUpstream) -> None:
    with pytest.raises(openai.NotFoundError) as retrieved:
        client.models.retrieve("no-such-model")
    assert retrieved.value.code == "model_not_found"

    with pytest.raises(openai.NotFoundError) as chatted:
        client.chat.completions.create(model="no-such-model", messages=USER_MESSAGES)
    assert chatted.value.code == "model_not_found"
    assert chatted.value.type == "not_found_error"
    assert chatted.value.param == "model"
    assert upstream.requests == []


# --------------------------------------------------------------------------- model selection


def test_models_list_in_extra_body(
    client: openai.OpenAI, gateway: GatewayServer, upstream: MockUpstream
) -> None:
    response = client.chat.completions.create(
        model="test-model", messages=USER_MESSAGES, extra_body={"models": ["test-model"]}
    )
    assert metadata_of(response)["model_canonical"] == "test-model"
    assert "models" not in upstream.last_request.json

    # without `model` (which the SDK requires, so over plain HTTP)
    raw = gateway.post({"models": ["test-model"], "messages": USER_MESSAGES})
    assert raw.status_code == 200, raw.text
    body = raw.json()
    assert body["choices"][0]["message"]["content"] == DEFAULT_TEXT
    assert body["routing_metadata"]["model_canonical"] == "test-model"
    assert body["routing_metadata"]["provider"] == "mock"
    sent = upstream.last_request.json
    assert sent["model"] == "upstream-model-id"
    assert "models" not in sent


@pytest.mark.parametrize(
    ("model", "extra_body", "strategy"),
    [
        ("mock/test-model", None, "balanced"),
        ("test-model:floor", None, "cost"),
        ("test-model:nitro", None, "latency"),
        ("test-model", {"routing": {"strategy": "latency"}}, "latency"),
        ("test-model", {"provider": {"sort": "throughput"}}, "throughput"),
    ],
)
def test_model_slugs_and_strategies(
    client: openai.OpenAI,
    upstream: MockUpstream,
    model: str,
    extra_body: dict[str, Any] | None,
    strategy: str,
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=USER_MESSAGES, extra_body=extra_body
    )
    response = raw.parse()
    assert response.choices[0].message.content == DEFAULT_TEXT
    assert_metadata(
        metadata_of(response),
        request_id=raw.headers["x-request-id"],
        prompt_tokens=PROMPT_WORDS,
        completion_tokens=len(DEFAULT_PIECES),
        strategy=strategy,
    )
    assert_success_headers(raw.headers, metadata_of(response)["cost"]["usd"])
    sent = upstream.last_request.json
    assert sent["model"] == "upstream-model-id"
    assert not {"routing", "provider"} & sent.keys()


def test_slug_for_a_provider_without_the_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="other/test-model", messages=USER_MESSAGES)
    assert caught.value.code == "model_not_found"


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/v1/models"])
def test_every_answer_has_a_request_id(gateway: GatewayServer, path: str) -> None:
    response = httpx.get(f"{gateway.url}{path}", headers={"x-request-id": "trace-42"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "trace-42"
    assert httpx.get(f"{gateway.url}{path}").headers["x-request-id"]
