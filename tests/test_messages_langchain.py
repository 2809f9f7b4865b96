"""`langchain-anthropic`'s `ChatAnthropic` against the gateway's `/v1/messages`: plain
calls, streaming, `bind_tools` and `with_structured_output` (both of its methods), on a
native (Anthropic) deployment and on a translated (OpenAI-compatible) one, each behind
a mock upstream; and on the simulated provider of the demo config."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from tests.gateway_server import GatewayServer
from tests.mock_upstream import JSONReply, MockUpstream, SSEReply, completion
from tests.test_messages_e2e import anthropic_fixture, sse_events

CLAUDE = "claude-sonnet-4-5-20250929"


@pytest.fixture(scope="module")
def openai_upstream() -> Iterator[MockUpstream]:
    with MockUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    shared_upstream: MockUpstream, openai_upstream: MockUpstream
) -> Iterator[GatewayServer]:
    def model(provider: str, model: str) -> dict[str, Any]:
        deployment = {
            "provider": provider,
            "model": model,
            "input_per_mtok": 1,
            "output_per_mtok": 2,
        }
        return {"deployments": [deployment]}

    config = {
        "auth": "none",
        "store": "memory://",
        "providers": {
            "claude": {"kind": "anthropic", "base_url": f"http://127.0.0.1:{shared_upstream.port}"},
            "openai": {"kind": "openai", "base_url": openai_upstream.url, "api_key": "sk-up"},
            "sim": {"kind": "simulated"},
        },
        "models": {
            "claude-native": model("claude", CLAUDE),
            "claude-translated": model("openai", "gpt-4o-mini"),
            "claude-sim": model("sim", "sim-1"),
        },
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


def chat_model(gateway: GatewayServer, model: str, **options: Any) -> ChatAnthropic:
    return ChatAnthropic(
        model=model,
        base_url=gateway.url,
        api_key="sk-gateway",
        max_retries=0,
        timeout=10,
        **options,
    )


class Person(pydantic.BaseModel):
    """A person mentioned in the text."""

    name: str
    age: int


WEATHER_CALL = {
    "id": "call_Paris",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}


def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"sunny in {city}"


def test_invoke_on_a_native_deployment(gateway: GatewayServer, claude: MockUpstream) -> None:
    claude.enqueue(JSONReply(anthropic_fixture("response_text_cached.json")))
    answer = chat_model(gateway, "claude-native").invoke("Hello")
    assert answer.content == "Hello! How can I help you today?"
    assert answer.usage_metadata is not None and answer.usage_metadata["output_tokens"] == 12
    assert claude.last_request.json["model"] == CLAUDE


def test_stream_on_a_native_deployment(gateway: GatewayServer, claude: MockUpstream) -> None:
    claude.enqueue(SSEReply(sse_events("stream_text.sse"), send_done=False))
    pieces = [chunk.content for chunk in chat_model(gateway, "claude-native").stream("Hello")]
    text = "".join(p for p in pieces if isinstance(p, str))
    assert text == "Hello!"


def test_bind_tools_round_trip_on_a_translated_deployment(
    gateway: GatewayServer, gpt: MockUpstream
) -> None:
    gpt.enqueue(
        JSONReply(completion(None, tool_calls=[WEATHER_CALL])),
        JSONReply(completion("It is sunny in Paris.")),
    )
    model = chat_model(gateway, "claude-translated").bind_tools([get_weather])
    question = HumanMessage("Weather in Paris?")
    first = model.invoke([question])
    assert isinstance(first, AIMessage)
    assert [(c["name"], c["args"], c["id"]) for c in first.tool_calls] == [
        ("get_weather", {"city": "Paris"}, "call_Paris")
    ]
    result = ToolMessage(get_weather("Paris"), tool_call_id="call_Paris")
    second = model.invoke([question, first, result])
    assert second.text == "It is sunny in Paris."
    asked, answered = gpt.requests
    assert asked.json["tools"][0]["function"]["name"] == "get_weather"
    assert answered.json["messages"][-1] == {
        "role": "tool",
        "content": "sunny in Paris",
        "tool_call_id": "call_Paris",
    }


def test_structured_output_through_a_forced_tool(gateway: GatewayServer, gpt: MockUpstream) -> None:
    call = {
        **WEATHER_CALL,
        "function": {"name": "Person", "arguments": '{"name":"Alice","age":30}'},
    }
    gpt.enqueue(JSONReply(completion(None, tool_calls=[call])))
    extract = chat_model(gateway, "claude-translated").with_structured_output(Person)
    assert extract.invoke("Alice is 30.") == Person(name="Alice", age=30)
    sent = gpt.last_request.json
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "Person"}}


def test_structured_output_through_a_json_schema(gateway: GatewayServer, gpt: MockUpstream) -> None:
    gpt.enqueue(JSONReply(completion('{"name": "Bob", "age": 41}')))
    extract = chat_model(gateway, "claude-translated").with_structured_output(
        Person, method="json_schema"
    )
    assert extract.invoke("Bob is 41.") == Person(name="Bob", age=41)
    response_format = gpt.last_request.json["response_format"]
    assert response_format["type"] == "json_schema"
    assert set(response_format["json_schema"]["schema"]["properties"]) == {"name", "age"}


def test_a_simulated_deployment_answers(gateway: GatewayServer) -> None:
    answer = chat_model(gateway, "claude-sim").invoke("Hello")
    assert isinstance(answer.content, str) and answer.content
    chunks = list(chat_model(gateway, "claude-sim").stream("Hello"))
    assert "".join(c.content for c in chunks if isinstance(c.content, str))


def test_native_structured_output_keeps_the_forced_tool(
    gateway: GatewayServer, claude: MockUpstream
) -> None:
    answer = anthropic_fixture("response_tool_use.json")
    answer["content"] = [
        {"type": "tool_use", "id": "toolu_01", "name": "Person", "input": {"name": "Eve", "age": 7}}
    ]
    claude.enqueue(JSONReply(answer))
    extract = chat_model(gateway, "claude-native").with_structured_output(Person)
    assert extract.invoke("Eve is 7.") == Person(name="Eve", age=7)
    sent = claude.last_request.json
    assert sent["tool_choice"]["type"] == "tool" and sent["tool_choice"]["name"] == "Person"
    assert json.dumps(sent["tools"][0]["input_schema"])
