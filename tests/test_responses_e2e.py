"""`POST /v1/responses` end to end, with the official `openai` SDK as the client.

The real app runs under uvicorn on loopback in front of mock upstreams that speak each
vendor's wire: an OpenAI-compatible chat upstream (reached by translation), an upstream
with OpenAI's Responses API (forwarded to natively), Azure's v1 Responses API, and
Anthropic's Messages API (through the gateway's Anthropic translation). What is checked
is what an SDK user sees (parsed objects, events, `routing_metadata`, headers, errors)
and exactly what reached each upstream.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.gateway_server import GatewayServer, metadata_of
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
from tests.redis_server import RedisServer
from tests.responses_mock import (
    DEFAULT_RESPONSE_ID,
    frame,
    function_call_item,
    response_events,
    response_object,
)
from tests.routing_setup import wait_until

ANTHROPIC_FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
NATIVE_MODEL = "gpt-4o-2024-08-06"
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
PRICES = {"input_per_mtok": 2.0, "output_per_mtok": 8.0}


class Upstreams:
    def __init__(self) -> None:
        self.chat = MockUpstream().start()  # OpenAI-compatible chat only: translated
        self.native = MockUpstream().start()  # with OpenAI's Responses API
        self.azure = MockUpstream().start()
        self.anthropic = MockUpstream().start()

    def all(self) -> list[MockUpstream]:
        return [self.chat, self.native, self.azure, self.anthropic]


def deployment(provider: str, model: str) -> dict[str, Any]:
    return {"provider": provider, "model": model, **PRICES}


def responses_config(up: Upstreams) -> dict[str, Any]:
    return {
        "auth": "none",
        "store": "memory://",
        "providers": {
            "chat": {"kind": "openai", "base_url": up.chat.url, "api_key": "sk-chat"},
            "native": {
                "kind": "openai",
                "base_url": up.native.url,
                "api_key": "sk-native",
                "responses_api": True,
            },
            "azure": {
                "kind": "azure",
                "endpoint": f"http://127.0.0.1:{up.azure.port}",
                "api_key": "azure-key",
            },
            "anthropic": {
                "kind": "anthropic",
                "base_url": f"http://127.0.0.1:{up.anthropic.port}",
                "api_key": "sk-ant",
            },
        },
        "models": {
            "translated": {"deployments": [deployment("chat", "upstream-model-id")]},
            "reasoner": {
                "deployments": [
                    {**deployment("chat", "o4-mini-like"), "capabilities": {"reasoning": True}}
                ]
            },
            "native": {"deployments": [deployment("native", NATIVE_MODEL)]},
            "azure": {"deployments": [deployment("azure", "gpt4o-prod")]},
            "claude": {"deployments": [deployment("anthropic", "claude-sonnet-4-20250514")]},
            # native first: routing.order picks either
            "mixed": {
                "deployments": [deployment("native", NATIVE_MODEL), deployment("chat", "chat-1")]
            },
        },
        "routing": {"retries": {"attempts": 1}, "exploration": {"share": 0}},
    }


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    up = Upstreams()
    yield up
    for server in up.all():
        server.stop()


@pytest.fixture(scope="module")
def gateway(upstreams: Upstreams) -> Iterator[GatewayServer]:
    server = GatewayServer(responses_config(upstreams)).start()
    yield server
    server.stop()


@pytest.fixture
def up(upstreams: Upstreams) -> Upstreams:
    for server in upstreams.all():
        server.reset()
    return upstreams


@pytest.fixture
def client(gateway: GatewayServer) -> Iterator[openai.OpenAI]:
    with gateway.sdk() as sdk:
        yield sdk


def post(gateway: GatewayServer, body: dict[str, Any] | bytes) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{gateway.url}/v1/responses",
        content=content,
        headers={"content-type": "application/json"},
        timeout=10,
    )


def sse(response: httpx.Response) -> list[dict[str, Any]]:
    """Every event of a raw stream, checking each frame is `event:` + one `data:` line."""
    events = []
    for block in response.text.split("\n\n"):
        if not block:
            continue
        head, data = block.split("\n")
        event = json.loads(data.removeprefix("data: "))
        assert head == f"event: {event['type']}"
        events.append(event)
    return events


# --------------------------------------------------------------------------- translated


def test_create_on_a_translated_deployment(client: openai.OpenAI, up: Upstreams) -> None:
    raw = client.responses.with_raw_response.create(
        model="translated",
        instructions="Be brief.",
        input="Say hello",
        max_output_tokens=50,
        temperature=0.3,
        metadata={"ticket": "T-1"},
    )
    response = raw.parse()
    assert response.output_text == DEFAULT_TEXT
    assert response.status == "completed" and response.metadata == {"ticket": "T-1"}
    assert response.id.startswith("resp_") and response.output[0].type == "message"
    assert response.usage is not None
    # the mock counts a prompt token per word of the messages: instructions included
    assert (response.usage.input_tokens, response.usage.output_tokens) == (4, 4)
    metadata = metadata_of(response)
    assert metadata["provider"] == "chat" and metadata["model_canonical"] == "translated"
    assert metadata["cost"] == {
        "usd": pytest.approx(4 * 2e-6 + 4 * 8e-6),
        "input_usd": 4 * 2e-6,
        "output_usd": 4 * 8e-6,
        "estimated": False,
    }
    assert raw.headers["x-switchboard-provider"] == "chat"
    assert raw.headers["x-switchboard-model"] == "upstream-model-id"
    assert float(raw.headers["x-switchboard-cost-usd"]) == metadata["cost"]["usd"]
    assert raw.headers["x-request-id"] == metadata["request_id"]
    assert (response.usage.model_extra or {})["cost"] == metadata["cost"]["usd"]
    assert "x-switchboard-dropped-params" not in raw.headers
    sent = up.chat.last_request
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-chat"
    assert sent.json == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ],
        "model": "upstream-model-id",
        "temperature": 0.3,
        "max_completion_tokens": 50,
    }


def test_stream_on_a_translated_deployment(client: openai.OpenAI, up: Upstreams) -> None:
    """The SDK's stream helper checks the event sequence strictly (an item's events
    after it was added, one response id throughout) and rebuilds the final response."""
    with client.responses.stream(model="translated", input="Say hello") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert final.output_text == DEFAULT_TEXT
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * len(DEFAULT_PIECES),
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.delta for e in events if e.type == "response.output_text.delta"] == DEFAULT_PIECES
    completed = events[-1].response
    metadata = metadata_of(completed)
    assert metadata["provider"] == "chat" and metadata["ttft_ms"] is not None
    assert completed.usage is not None and completed.usage.output_tokens == len(DEFAULT_PIECES)
    assert metadata["cost"]["estimated"] is False
    assert (completed.usage.model_extra or {})["cost"] == metadata["cost"]["usd"]  # OpenRouter's
    sent = up.chat.last_request.json
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_a_stream_without_upstream_usage_closes_with_the_gateways_count(
    client: openai.OpenAI, up: Upstreams
) -> None:
    up.chat.enqueue(SSEReply(include_usage=False))
    stream = client.responses.create(model="translated", input="Say hello", stream=True)
    events = list(stream)
    completed = events[-1].response
    assert completed.usage is not None and completed.usage.output_tokens == len(DEFAULT_PIECES)
    assert metadata_of(completed)["cost"]["estimated"] is True


def test_function_call_round_trip_through_previous_response_id(
    client: openai.OpenAI, up: Upstreams
) -> None:
    call = {
        "id": "call_abc",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    up.chat.enqueue(JSONReply(completion(content=None, tool_calls=[call])))
    first = client.responses.create(
        model="translated", input="Weather in Paris?", tools=[WEATHER_TOOL]
    )
    (item,) = first.output
    assert item.type == "function_call"
    assert (item.call_id, item.name, item.arguments) == (
        "call_abc",
        "get_weather",
        '{"city":"Paris"}',
    )
    assert up.chat.last_request.json["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city",
                "parameters": WEATHER_TOOL["parameters"],
                "strict": True,
            },
        }
    ]
    second = client.responses.create(
        model="translated",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": item.call_id, "output": "18 C"}],
        tools=[WEATHER_TOOL],
    )
    assert second.output_text == DEFAULT_TEXT and second.previous_response_id == first.id
    assert up.chat.last_request.json["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": "18 C", "tool_call_id": "call_abc"},
    ]
    # and the conversation goes on from the second answer
    client.responses.create(model="translated", previous_response_id=second.id, input="Thanks")
    assert up.chat.last_request.json["messages"][3:] == [
        {"role": "assistant", "content": DEFAULT_TEXT},
        {"role": "user", "content": "Thanks"},
    ]


def test_function_call_round_trip_with_the_items_sent_back(
    client: openai.OpenAI, up: Upstreams
) -> None:
    """Stateless, as Codex works (`store: false`): the client sends the output back."""
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
    }
    up.chat.enqueue(
        SSEReply(
            chunks=[
                chunk(role="assistant"),
                chunk(
                    tool_calls=[
                        {"index": 0, **call, "function": {**call["function"], "arguments": ""}}
                    ]
                ),
                chunk(tool_calls=[{"index": 0, "function": {"arguments": '{"city":"Oslo"}'}}]),
                chunk(finish_reason="tool_calls"),
                usage_chunk(make_usage()),
            ]
        )
    )
    with client.responses.stream(
        model="translated", input="Weather in Oslo?", tools=[WEATHER_TOOL], store=False
    ) as stream:
        final = stream.get_final_response()
    (item,) = final.output
    assert item.type == "function_call" and item.arguments == '{"city":"Oslo"}'
    client.responses.create(
        model="translated",
        input=[
            {"role": "user", "content": "Weather in Oslo?"},
            *[o.model_dump(exclude_none=True) for o in final.output],
            {"type": "function_call_output", "call_id": "call_1", "output": "-2 C"},
        ],
        tools=[WEATHER_TOOL],
        store=False,
    )
    messages = up.chat.last_request.json["messages"]
    assert messages[1] == {"role": "assistant", "content": None, "tool_calls": [call]}
    assert messages[2] == {"role": "tool", "content": "-2 C", "tool_call_id": "call_1"}


PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4"
    "DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)
PDF = "data:application/pdf;base64,JVBERi0xLjQKJcOkw7zDtsOfCg=="


def test_every_input_kind_and_setting_reaches_a_translated_upstream(
    client: openai.OpenAI, up: Upstreams
) -> None:
    """Items of each kind (messages with images and files, a call and its output),
    instructions, tools with a named tool_choice, a JSON schema, reasoning effort,
    max_output_tokens and metadata, through the SDK onto a chat upstream."""
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    response = client.responses.create(
        model="reasoner",
        instructions="Answer in JSON.",
        input=[
            {"role": "developer", "content": "Prefer metric units."},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Where is this, and what is in the file?"},
                    {"type": "input_image", "image_url": PNG, "detail": "low"},
                    {"type": "input_file", "filename": "a.pdf", "file_data": PDF},
                ],
            },
            {
                "type": "function_call",
                "call_id": "call_9",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {"type": "function_call_output", "call_id": "call_9", "output": "18 C"},
        ],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "name": "get_weather"},
        text={"format": {"type": "json_schema", "name": "place", "schema": schema, "strict": True}},
        reasoning={"effort": "high"},
        max_output_tokens=400,
        metadata={"run": "r-1"},
    )
    assert response.output_text == DEFAULT_TEXT and response.metadata == {"run": "r-1"}
    assert response.text.format is not None and response.text.format.type == "json_schema"
    assert response.reasoning is not None and response.reasoning.effort == "high"
    assert response.max_output_tokens == 400
    assert response.instructions == "Answer in JSON."
    sent = up.chat.last_request.json
    assert sent["messages"] == [
        {"role": "system", "content": "Answer in JSON."},
        {"role": "system", "content": "Prefer metric units."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Where is this, and what is in the file?"},
                {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
                {"type": "file", "file": {"filename": "a.pdf", "file_data": PDF}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": "18 C", "tool_call_id": "call_9"},
    ]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "place", "schema": schema, "strict": True},
    }
    assert sent["reasoning_effort"] == "high"
    assert sent["max_completion_tokens"] == 400
    assert "metadata" not in sent  # kept by the gateway, echoed above


def test_a_streamed_function_call_is_typed_events_in_order(
    client: openai.OpenAI, up: Upstreams
) -> None:
    """Text then a call, streamed: each item's events between its added and done, the
    arguments as deltas, sequence numbers 0, 1, 2, ... (as OpenAI's streaming events
    reference lists them)."""
    call = {"index": 0, "id": "call_7", "type": "function"}
    up.chat.enqueue(
        SSEReply(
            chunks=[
                chunk(role="assistant", content=""),
                chunk(content="Checking."),
                chunk(tool_calls=[{**call, "function": {"name": "get_weather", "arguments": ""}}]),
                chunk(tool_calls=[{"index": 0, "function": {"arguments": '{"city":'}}]),
                chunk(tool_calls=[{"index": 0, "function": {"arguments": '"Rome"}'}}]),
                chunk(finish_reason="tool_calls"),
                usage_chunk(make_usage()),
            ]
        )
    )
    with client.responses.stream(
        model="translated", input="Weather in Rome?", tools=[WEATHER_TOOL]
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert deltas == ['{"city":', '"Rome"}']
    message, function_call = final.output
    assert message.type == "message" and function_call.type == "function_call"
    assert (function_call.call_id, function_call.arguments) == ("call_7", '{"city":"Rome"}')
    assert events[8].output_index == events[-2].output_index == 1
    assert metadata_of(events[-1].response)["provider"] == "chat"


def test_a_response_not_stored_cannot_be_continued(client: openai.OpenAI, up: Upstreams) -> None:
    first = client.responses.create(model="translated", input="hi", store=False)
    with pytest.raises(openai.BadRequestError) as raised:
        client.responses.create(model="translated", input="again", previous_response_id=first.id)
    error = raised.value.body
    assert isinstance(error, dict)
    assert (error["code"], error["param"]) == (
        "previous_response_not_found",
        "previous_response_id",
    )


def test_translated_to_anthropic(client: openai.OpenAI, up: Upstreams) -> None:
    """Any deployment serves the Responses API: here Claude, through the gateway's
    Anthropic translation (its fixture answers with a tool call)."""
    answer = json.loads((ANTHROPIC_FIXTURES / "response_tool_use.json").read_text())
    up.anthropic.enqueue(JSONReply(answer["anthropic"]))
    response = client.responses.create(
        model="claude", input="What's the weather like in San Francisco?", tools=[WEATHER_TOOL]
    )
    kinds = [item.type for item in response.output]
    assert "function_call" in kinds
    call = next(item for item in response.output if item.type == "function_call")
    assert call.call_id.startswith("toolu_") and json.loads(call.arguments)
    assert metadata_of(response)["provider"] == "anthropic"
    sent = up.anthropic.last_request
    assert sent.path == "/v1/messages"
    assert sent.json["tools"][0]["name"] == "get_weather"


def test_codex_fields_are_accepted_and_the_untranslatable_named(
    gateway: GatewayServer, up: Upstreams
) -> None:
    body = json.loads(
        (Path(__file__).parent / "fixtures" / "responses" / "request_codex.json").read_text()
    )["responses"]
    response = post(gateway, {**body, "model": "translated"})
    assert response.status_code == 200, response.text
    assert response.headers["x-switchboard-dropped-params"] == (
        "include,prompt_cache_key,client_metadata,tools.namespace,tools.web_search,text.verbosity"
    )
    events = sse(response)
    assert events[-1]["type"] == "response.completed"
    sent = up.chat.last_request.json
    assert [t["function"]["name"] for t in sent["tools"]] == ["exec_command", "get_time"]
    assert "include" not in sent and "prompt_cache_key" not in sent


# --------------------------------------------------------------------------- native


def test_native_create_forwards_the_body(client: openai.OpenAI, up: Upstreams) -> None:
    raw = client.responses.with_raw_response.create(
        model="native",
        input="hi",
        reasoning={"effort": "low"},
        extra_body={"frobnicate": {"level": 3}, "routing": {"strategy": "cost"}},
    )
    response = raw.parse()
    assert response.id == DEFAULT_RESPONSE_ID and response.output_text == DEFAULT_TEXT
    metadata = metadata_of(response)
    assert metadata["provider"] == "native" and metadata["cost"]["estimated"] is False
    assert metadata["cost"]["usd"] == pytest.approx(10 * 2e-6 + 4 * 8e-6)  # the upstream's usage
    assert raw.headers["x-switchboard-dropped-params"] == "reasoning"  # gpt-4o does not reason
    sent = up.native.last_request
    assert sent.path == "/v1/responses" and sent.headers["authorization"] == "Bearer sk-native"
    assert sent.json == {"model": NATIVE_MODEL, "input": "hi", "frobnicate": {"level": 3}}
    assert up.chat.requests == []


def test_native_stream_passes_through_with_metadata_at_the_end(
    client: openai.OpenAI, up: Upstreams
) -> None:
    with client.responses.stream(model="native", input="hi") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert final.output_text == DEFAULT_TEXT and final.id == DEFAULT_RESPONSE_ID
    upstream_events = [
        json.loads(str(e).split("data: ", 1)[1]) for e in response_events(model=NATIVE_MODEL)
    ]
    assert [e.type for e in events] == [e["type"] for e in upstream_events]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    metadata = metadata_of(events[-1].response)
    assert metadata["provider"] == "native" and metadata["ttft_ms"] is not None
    assert up.native.last_request.json["stream"] is True


def test_native_response_ids_continue_only_where_they_live(
    client: openai.OpenAI, gateway: GatewayServer, up: Upstreams
) -> None:
    first = client.responses.create(model="native", input="hi")
    # a model with a native deployment: the follow-up goes to the provider that holds it,
    # previous_response_id forwarded as is
    client.responses.create(
        model="mixed",
        input="more",
        previous_response_id=first.id,
        extra_body={"routing": {"order": ["chat"]}},
    )
    assert up.native.last_request.json["previous_response_id"] == first.id
    assert up.chat.requests == []
    # a model without one: a clear 400, before any upstream is called
    response = post(
        gateway, {"model": "translated", "input": "x", "previous_response_id": first.id}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_candidate"
    assert "'native'" in response.json()["error"]["message"]
    assert up.chat.requests == []


def test_an_unknown_previous_response_id_goes_only_to_native_deployments(
    client: openai.OpenAI, gateway: GatewayServer, up: Upstreams
) -> None:
    client.responses.create(model="mixed", input="x", previous_response_id="resp_elsewhere")
    assert up.native.last_request.json["previous_response_id"] == "resp_elsewhere"
    response = post(
        gateway, {"model": "translated", "input": "x", "previous_response_id": "resp_x"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "previous_response_not_found"


def test_a_gateway_kept_response_continued_on_a_native_deployment(
    client: openai.OpenAI, up: Upstreams
) -> None:
    first = client.responses.create(model="translated", input="My name is Ada.")
    client.responses.create(model="native", input="What is my name?", previous_response_id=first.id)
    sent = up.native.last_request.json
    assert "previous_response_id" not in sent
    assert sent["input"] == [
        {"role": "user", "content": "My name is Ada."},
        {
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": DEFAULT_TEXT, "annotations": [], "logprobs": []}
            ],
        },
        {"role": "user", "content": "What is my name?"},
    ]


def test_native_only_fields_on_a_translated_model_are_a_400(
    gateway: GatewayServer, up: Upstreams
) -> None:
    response = post(gateway, {"model": "translated", "input": "hi", "conversation": "conv_123"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (
        "no_candidate",
        "conversation",
        "invalid_request_error",
    )
    assert up.chat.requests == []


def test_azure_native_responses(client: openai.OpenAI, up: Upstreams) -> None:
    response = client.responses.create(model="azure", input="hi")
    assert response.output_text == DEFAULT_TEXT
    sent = up.azure.last_request
    assert sent.path == "/openai/v1/responses" and sent.query == {}
    assert sent.headers["api-key"] == "azure-key" and "authorization" not in sent.headers
    assert sent.json == {"model": "gpt4o-prod", "input": "hi"}


# --------------------------------------------------------------------------- failures


def test_a_failing_native_deployment_falls_back_before_the_first_byte(
    client: openai.OpenAI, up: Upstreams
) -> None:
    failed = response_object(status="failed") | {
        "error": {"code": "server_error", "message": "The model failed"}
    }
    opening = response_events()[:2]
    failure = frame({"type": "response.failed", "sequence_number": 2, "response": failed})
    up.native.enqueue(SSEReply(chunks=[*opening, failure], send_done=False))
    with client.responses.stream(model="mixed", input="hi") as stream:
        final = stream.get_final_response()
        events = list(stream)
    assert final.output_text == DEFAULT_TEXT
    metadata = metadata_of(final)
    assert metadata["provider"] == "chat"
    assert [(a["provider"], a["error"]) for a in metadata["attempts"]] == [
        ("native", "upstream_unavailable")
    ]
    assert events == []  # all read by get_final_response


def test_every_deployment_failing_is_an_openai_error(gateway: GatewayServer, up: Upstreams) -> None:
    up.chat.enqueue(ErrorReply(503, "overloaded", type="server_error"))
    response = post(gateway, {"model": "translated", "input": "hi"})
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_unavailable" and error["type"] == "api_error"
    assert response.headers["x-request-id"]


def test_a_failure_after_the_first_byte_ends_with_response_failed(
    gateway: GatewayServer, up: Upstreams
) -> None:
    up.chat.enqueue(SSEReply(cut_after=3))
    response = post(gateway, {"model": "translated", "input": "hi", "stream": True})
    assert response.status_code == 200
    events = sse(response)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    error, failed = events[-2:]
    assert error["type"] == "error" and error["code"] == "upstream_stream_cut"
    assert failed["type"] == "response.failed"
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["id"] == events[0]["response"]["id"]
    assert failed["response"]["error"]["code"] == "upstream_stream_cut"
    assert failed["response"]["routing_metadata"]["provider"] == "chat"
    assert "response.completed" not in [e["type"] for e in events]


def test_the_sdk_sees_a_mid_stream_failure(client: openai.OpenAI, up: Upstreams) -> None:
    up.native.enqueue(SSEReply(chunks=response_events()[:6], send_done=False))
    events = list(client.responses.create(model="native", input="hi", stream=True))
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    assert events[-1].response.id == DEFAULT_RESPONSE_ID


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_json"),
        ({"model": "no-such-model", "input": "hi"}, 404, "model_not_found"),
        ({"model": "translated"}, 400, "missing_field"),
        (
            {"model": "translated", "input": [{"role": "wizard", "content": "x"}]},
            400,
            "invalid_value",
        ),
    ],
)
def test_bad_requests_get_the_openai_envelope(
    gateway: GatewayServer, up: Upstreams, body: Any, status: int, code: str
) -> None:
    response = post(gateway, body)
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert response.json()["error"]["code"] == code
    assert response.headers["x-request-id"]
    assert all(server.requests == [] for server in up.all())


def test_function_call_items_from_a_native_upstream_round_trip(
    client: openai.OpenAI, up: Upstreams
) -> None:
    call = function_call_item("get_weather", '{"city":"Paris"}')
    up.native.enqueue(JSONReply(response_object(output=[call])))
    first = client.responses.create(model="native", input="Weather?", tools=[WEATHER_TOOL])
    assert first.output[0].type == "function_call"
    client.responses.create(
        model="native",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call["call_id"], "output": "18 C"}],
        tools=[WEATHER_TOOL],
    )
    sent = up.native.last_request.json
    assert sent["previous_response_id"] == first.id
    assert sent["input"][0]["type"] == "function_call_output"


# --------------------------------------------------------------------------- shared store


def test_replicas_on_one_redis_continue_each_others_responses(
    own_redis_server: RedisServer,
    gateway_factory: Callable[[dict[str, Any]], GatewayServer],
    up: Upstreams,
) -> None:
    config = {**responses_config(up), "store": own_redis_server.url}
    first, second = gateway_factory(config), gateway_factory(config)
    with first.sdk() as a, second.sdk() as b:
        started = a.responses.create(model="translated", input="My name is Ada.")
        key = f"switchboard:response:{started.id}"
        with own_redis_server.client() as client:
            wait_until(lambda: bool(client.exists(key)), timeout=5)  # written off the path
        b.responses.create(model="translated", input="My name?", previous_response_id=started.id)
    assert up.chat.last_request.json["messages"] == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": DEFAULT_TEXT},
        {"role": "user", "content": "My name?"},
    ]
