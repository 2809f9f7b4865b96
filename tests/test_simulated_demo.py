"""The demo (`make run`'s embedded examples/demo.yaml) with what clients test with: the
official `openai` SDK and LangChain's `with_structured_output` and `bind_tools`, against
the simulated providers, which honour tools, response formats and token limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import msgspec
import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from gateway.config import EMBEDDED_CONFIG
from tests.gateway_server import GatewayServer

MODEL = "demo-llama"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
STOCK = {
    "type": "function",
    "function": {
        "name": "stock_price",
        "description": "Latest price of a stock ticker",
        "parameters": {
            "type": "object",
            "properties": {"ticker": {"type": "string", "pattern": "^[A-Z]{1,5}$"}},
            "required": ["ticker"],
        },
    },
}


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayServer]:
    server = GatewayServer(msgspec.yaml.decode(EMBEDDED_CONFIG.read_bytes())).start()
    yield server
    server.stop()


def ask(gateway: GatewayServer, content: str, **extra: Any) -> Any:
    return gateway.sdk().chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": content}], **extra
    )


def arguments_valid(call: Any, spec: dict[str, Any]) -> dict[str, Any]:
    arguments: dict[str, Any] = json.loads(call.function.arguments)
    jsonschema.validate(arguments, spec["function"]["parameters"])
    return arguments


# --- the openai SDK ---------------------------------------------------------------------


def test_a_required_tool_call_is_well_formed(gateway: GatewayServer) -> None:
    answer = ask(gateway, "hello", tools=[WEATHER, STOCK], tool_choice="required")
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"  # no word in common: the first tool
    assert arguments_valid(call, WEATHER)["unit"] == "celsius"


def test_a_named_tool_is_the_one_called(gateway: GatewayServer) -> None:
    choice = {"type": "function", "function": {"name": "stock_price"}}
    answer = ask(gateway, "anything", tools=[WEATHER, STOCK], tool_choice=choice)
    (call,) = answer.choices[0].message.tool_calls
    assert call.function.name == "stock_price"
    assert arguments_valid(call, STOCK)["ticker"].isupper()


def test_auto_calls_the_tool_the_question_points_at_and_answers_small_talk(
    gateway: GatewayServer,
) -> None:
    answer = ask(gateway, "What is the stock price of ACME?", tools=[WEATHER, STOCK])
    assert answer.choices[0].message.tool_calls[0].function.name == "stock_price"
    small_talk = ask(gateway, "Hi there!", tools=[WEATHER, STOCK])
    assert small_talk.choices[0].message.tool_calls is None
    assert small_talk.choices[0].finish_reason == "stop"


def test_a_tool_round_trip_ends_in_text_that_uses_the_result(gateway: GatewayServer) -> None:
    first = ask(gateway, "What is the weather in Paris?", tools=[WEATHER])
    call = first.choices[0].message.tool_calls[0]
    answer = gateway.sdk().chat.completions.create(
        model=MODEL,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"},
        ],
    )
    message = answer.choices[0].message
    assert message.tool_calls is None and answer.choices[0].finish_reason == "stop"
    assert message.content.startswith("The tool answered: 18 degrees and sunny.")


def test_json_schema_output_is_valid_against_the_schema(gateway: GatewayServer) -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "year": {"type": "integer", "minimum": 1900},
            "genres": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        },
        "required": ["title", "year", "genres"],
        "additionalProperties": False,
    }
    answer = ask(
        gateway,
        "Name a film.",
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "film", "schema": schema, "strict": True},
        },
    )
    assert answer.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(answer.choices[0].message.content), schema)
    json_object = ask(gateway, "Any JSON", response_format={"type": "json_object"})
    assert isinstance(json.loads(json_object.choices[0].message.content), dict)


def test_length_only_when_the_limit_cuts_and_sentences_end_otherwise(
    gateway: GatewayServer,
) -> None:
    whole = ask(gateway, "hello")
    assert whole.choices[0].finish_reason == "stop"
    assert whole.choices[0].message.content.endswith(".")
    cut = ask(gateway, "hello", max_tokens=3)
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage is not None and cut.usage.completion_tokens == 3
    roomy = ask(gateway, "hello", max_completion_tokens=4000)
    assert roomy.choices[0].finish_reason == "stop"


def test_a_streamed_tool_call_assembles_into_valid_arguments(gateway: GatewayServer) -> None:
    chunks = list(
        gateway.sdk().chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "weather in Rome?"}],
            tools=[WEATHER],
            stream=True,
        )
    )
    deltas = [d for c in chunks if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id and deltas[0].function.name == "get_weather"
    arguments = "".join(d.function.arguments or "" for d in deltas)
    jsonschema.validate(json.loads(arguments), WEATHER["function"]["parameters"])
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "tool_calls"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == len(deltas) - 1


# --- LangChain ----------------------------------------------------------------------------


class Film(BaseModel):
    """A film and why it matters."""

    title: str
    year: int = Field(ge=1900, le=2100)
    genres: list[str] = Field(min_length=1)
    sequel_of: str | None = None


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@pytest.fixture
def llm(gateway: GatewayServer) -> ChatOpenAI:
    return ChatOpenAI(model=MODEL, base_url=f"{gateway.url}/v1", api_key="demo", max_retries=0)


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_langchain_with_structured_output(llm: ChatOpenAI, method: str) -> None:
    film = llm.with_structured_output(Film, method=method).invoke("Name a good film.")
    assert isinstance(film, Film)


def test_langchain_json_mode_gets_a_json_object(llm: ChatOpenAI) -> None:
    # json_mode sends no schema (the prompt describes the format): any JSON object is valid
    parsed = llm.with_structured_output(method="json_mode").invoke("Return JSON.")
    assert isinstance(parsed, dict) and isinstance(parsed["answer"], str)


def test_langchain_bind_tools_and_a_tool_round_trip(llm: ChatOpenAI) -> None:
    with_tools = llm.bind_tools([multiply])
    question = HumanMessage("Multiply 3 by 12.")
    called = with_tools.invoke([question])
    (call,) = called.tool_calls
    assert call["name"] == "multiply"
    assert set(call["args"]) == {"a", "b"} and all(
        isinstance(v, int) for v in call["args"].values()
    )
    result = multiply.invoke(call["args"])
    answered = with_tools.invoke(
        [question, called, ToolMessage(str(result), tool_call_id=call["id"])]
    )
    assert not answered.tool_calls
    assert str(answered.content).startswith(f"The tool answered: {result}.")


def test_langchain_streams_a_tool_call(llm: ChatOpenAI) -> None:
    merged = None
    for chunk in llm.bind_tools([multiply], tool_choice="multiply").stream("Multiply 2 by 5."):
        merged = chunk if merged is None else merged + chunk
    assert merged is not None
    assert merged.tool_calls[0]["name"] == "multiply"
