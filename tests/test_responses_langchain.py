"""LangChain's `ChatOpenAI(use_responses_api=True)` against the gateway: plain calls,
streaming, tool binding with a tool round trip, and structured output, on a deployment
reached by translation (a chat upstream) and on one with a Responses API of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tests.gateway_server import GatewayServer
from tests.mock_upstream import DEFAULT_TEXT, JSONReply, MockUpstream, completion
from tests.responses_mock import function_call_item, message_item, response_object

PRICES = {"input_per_mtok": 2.0, "output_per_mtok": 8.0}


@pytest.fixture(scope="module")
def native_upstream() -> Iterator[MockUpstream]:
    with MockUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    shared_upstream: MockUpstream, native_upstream: MockUpstream
) -> Iterator[GatewayServer]:
    config = {
        "auth": "none",
        "providers": {
            "chat": {"kind": "openai", "base_url": shared_upstream.url, "api_key": "sk-1"},
            "native": {
                "kind": "openai",
                "base_url": native_upstream.url,
                "api_key": "sk-2",
                "responses_api": True,
            },
        },
        "models": {
            "translated": {"deployments": [{"provider": "chat", "model": "m-1", **PRICES}]},
            "native": {"deployments": [{"provider": "native", "model": "gpt-4o", **PRICES}]},
        },
    }
    server = GatewayServer(config).start()
    yield server
    server.stop()


@pytest.fixture
def native(native_upstream: MockUpstream) -> MockUpstream:
    native_upstream.reset()
    return native_upstream


def chat_model(gateway: GatewayServer, model: str) -> ChatOpenAI:
    return ChatOpenAI(
        model=model,
        base_url=f"{gateway.url}/v1",
        api_key="sk-client",  # type: ignore[arg-type]
        use_responses_api=True,
        max_retries=0,
        timeout=10,
    )


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"18 C in {city}"


class Weather(BaseModel):
    city: str
    temp_c: float


@pytest.mark.parametrize("model", ["translated", "native"])
def test_invoke(
    gateway: GatewayServer, upstream: MockUpstream, native: MockUpstream, model: str
) -> None:
    answer = chat_model(gateway, model).invoke("Say hello")
    assert answer.text == DEFAULT_TEXT
    assert answer.usage_metadata is not None and answer.usage_metadata["output_tokens"] == 4
    served = upstream if model == "translated" else native
    path = "/v1/chat/completions" if model == "translated" else "/v1/responses"
    assert served.last_request.path == path


@pytest.mark.parametrize("model", ["translated", "native"])
def test_stream(
    gateway: GatewayServer, upstream: MockUpstream, native: MockUpstream, model: str
) -> None:
    chunks = list(chat_model(gateway, model).stream("Say hello"))
    assert "".join(c.text for c in chunks) == DEFAULT_TEXT
    last = chunks[-1]
    assert last.usage_metadata is not None and last.usage_metadata["output_tokens"] == 4


def test_bind_tools_and_a_tool_round_trip(gateway: GatewayServer, upstream: MockUpstream) -> None:
    call = {
        "id": "call_w1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    upstream.enqueue(JSONReply(completion(content=None, tool_calls=[call])))
    model = chat_model(gateway, "translated").bind_tools([get_weather])
    question = HumanMessage("Weather in Paris?")
    first = model.invoke([question])
    (tool_call,) = first.tool_calls
    assert (tool_call["name"], tool_call["args"], tool_call["id"]) == (
        "get_weather",
        {"city": "Paris"},
        "call_w1",
    )
    sent = upstream.last_request.json
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]
    result = get_weather.invoke(tool_call["args"])
    second = model.invoke([question, first, ToolMessage(result, tool_call_id="call_w1")])
    assert second.text == DEFAULT_TEXT
    assert upstream.last_request.json["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "content": "18 C in Paris", "tool_call_id": "call_w1"},
    ]


def test_bind_tools_on_a_native_deployment(gateway: GatewayServer, native: MockUpstream) -> None:
    native.enqueue(
        JSONReply(response_object(output=[function_call_item("get_weather", '{"city":"Oslo"}')]))
    )
    answer = chat_model(gateway, "native").bind_tools([get_weather]).invoke("Weather in Oslo?")
    assert answer.tool_calls[0]["args"] == {"city": "Oslo"}
    tools: list[dict[str, Any]] = native.last_request.json["tools"]
    assert tools[0]["type"] == "function" and tools[0]["name"] == "get_weather"


@pytest.mark.parametrize("model", ["translated", "native"])
def test_structured_output(
    gateway: GatewayServer, upstream: MockUpstream, native: MockUpstream, model: str
) -> None:
    text = json.dumps({"city": "Paris", "temp_c": 18.5})
    if model == "translated":
        upstream.enqueue(JSONReply(completion(content=text)))
    else:
        native.enqueue(JSONReply(response_object(output=[message_item(text)])))
    weather = chat_model(gateway, model).with_structured_output(Weather).invoke("Paris?")
    assert weather == Weather(city="Paris", temp_c=18.5)
    if model == "translated":
        fmt = upstream.last_request.json["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Weather"
    else:
        assert native.last_request.json["text"]["format"]["type"] == "json_schema"
