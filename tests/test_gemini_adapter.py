"""Golden tests of the Gemini adapter: OpenAI requests → Gemini bodies, and Gemini
answers, streams and errors → OpenAI objects and typed errors, on the payloads in
tests/fixtures/gemini (see its README for where each shape comes from).

Answers go through the real adapter and HTTP client against a mock upstream on loopback,
so the URL, headers, SSE decoding and block boundaries are exercised as well."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

import providers.errors as errors
from gateway.chat_decoding import decode_chat_body
from gateway.config import parse_config
from providers.base import ProviderCall, StreamChunk
from providers.chat_types import ChatRequest
from providers.errors import InvalidRequest, ProviderError
from providers.gemini.adapter import GeminiProvider
from providers.gemini.config import DEFAULT_THINKING_BUDGETS, GeminiConfig
from providers.gemini.errors import retry_after
from providers.gemini.request import gemini_body
from providers.gemini.response import finish_reason
from providers.gemini.wire import GeminiErrorBody, GeminiErrorDetail
from providers.registry import build_provider
from tests.mock_upstream import JSONReply, MockUpstream, RawReply, SSEReply

FIXTURES = Path(__file__).parent / "fixtures" / "gemini"
CREATED = 1700000000
API_KEY = "AIzaSy-test-key-never-shown"
MODEL = "gemini-2.0-flash"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def names(pattern: str) -> list[str]:
    return sorted(path.name for path in FIXTURES.glob(pattern))


def decode(body: dict[str, Any]) -> ChatRequest:
    request, _ = decode_chat_body(json.dumps(body).encode())
    return request


def call_for(body: dict[str, Any], drop: tuple[str, ...] = (), model: str = MODEL) -> ProviderCall:
    return ProviderCall(request=decode(body), model=model, request_id="req-1", drop_params=drop)


def sent(body: dict[str, Any], drop: tuple[str, ...] = ()) -> Any:
    return json.loads(gemini_body(call_for(body, drop), DEFAULT_THINKING_BUDGETS))


def counter_ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"call_{next(counter)}"


@pytest.fixture
async def provider(upstream: MockUpstream) -> AsyncIterator[GeminiProvider]:
    config = GeminiConfig(base_url=f"http://127.0.0.1:{upstream.port}/v1beta", api_key=API_KEY)
    adapter = GeminiProvider("gemini", config, clock=lambda: CREATED, tool_call_ids=counter_ids())
    yield adapter
    await adapter.aclose()  # its pooled connections belong to this test's loop


HELLO: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "Hello"}]}


# --------------------------------------------------------------------------- requests


@pytest.mark.parametrize("name", names("request_*.json"))
def test_request_translation(name: str) -> None:
    fixture = load(name)
    request = decode(fixture["openai"])
    provider = GeminiProvider("gemini", GeminiConfig(api_key=API_KEY))
    dropped = provider.unsupported_params(request, GeminiProvider.capabilities)
    assert dropped == fixture["dropped"]
    call = ProviderCall(request=request, model=MODEL, drop_params=tuple(dropped))
    assert json.loads(gemini_body(call, DEFAULT_THINKING_BUDGETS)) == fixture["gemini"]


def test_parameters_routing_dropped_are_not_sent() -> None:
    body = {**HELLO, "temperature": 0.3, "n": 2, "reasoning_effort": "low", "seed": 7}
    assert sent(body, drop=("temperature", "n", "reasoning_effort")) == {
        "contents": [{"role": "user", "parts": [{"text": "Hello"}]}],
        "generationConfig": {"seed": 7},
    }


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "f"}},
            {"mode": "ANY", "allowedFunctionNames": ["f"]},
        ),
    ],
)
def test_tool_choice(choice: Any, config: dict[str, Any]) -> None:
    tool = {"type": "function", "function": {"name": "f", "description": "does f"}}
    body = sent({**HELLO, "tools": [tool], "tool_choice": choice})
    assert body["tools"] == [{"functionDeclarations": [{"name": "f", "description": "does f"}]}]
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_tool_choice_without_tools_is_not_sent() -> None:
    assert "toolConfig" not in sent({**HELLO, "tool_choice": "none"})


def test_thinking_budgets_come_from_the_config() -> None:
    config = msgspec.convert(
        {"kind": "gemini", "thinking_budgets": {"low": 2048, "high": -1}}, GeminiConfig
    )
    call = call_for({**HELLO, "reasoning_effort": "high"})
    body = json.loads(gemini_body(call, config.thinking_budgets))
    assert body["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": -1, "includeThoughts": True}
    }


def test_parallel_tool_calls_true_is_what_gemini_does() -> None:
    provider = GeminiProvider("gemini", GeminiConfig())
    request = decode(
        {**HELLO, "parallel_tool_calls": True, "stream_options": {"include_usage": True}}
    )
    assert provider.unsupported_params(request, GeminiProvider.capabilities) == []


def test_deprecated_function_messages() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "Add 2 and 3"},
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "add", "arguments": '{"a": 2, "b": 3}'},
            },
            {"role": "function", "name": "add", "content": "5"},
        ],
    }
    assert sent(body)["contents"] == [
        {"role": "user", "parts": [{"text": "Add 2 and 3"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "add", "args": {"a": 2, "b": 3}}}]},
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "add", "response": {"content": "5"}}}],
        },
    ]


def tool_turn(arguments: str) -> list[dict[str, Any]]:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    return [{"role": "user", "content": "go"}, {"role": "assistant", "tool_calls": [call]}]


def image(url: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        (
            {"messages": tool_turn("{not json")},
            "messages[1].tool_calls[0].function.arguments",
            "not valid JSON",
        ),
        (
            {"messages": tool_turn("[1, 2]")},
            "messages[1].tool_calls[0].function.arguments",
            "JSON object",
        ),
        (
            {"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]},
            "messages[0].tool_call_id",
            "nope",
        ),
        (
            {"messages": image("ftp://example.com/a.png")},
            "messages[0].content[0].image_url.url",
            "http(s)",
        ),
        (
            {"messages": image("data:image/png,rawbytes")},
            "messages[0].content[0].image_url.url",
            "base64",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}
                ]
            },
            "messages[0].content[0].file.file_id",
            "file ids",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "file", "file": {"file_data": "JVBERi0="}}],
                    }
                ]
            },
            "messages[0].content[0].file.file_data",
            "data URL",
        ),
        ({"reasoning_effort": "extreme"}, "reasoning_effort", "high, low, medium, minimal, none"),
        ({"top_k": "forty"}, "top_k", "integer"),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "t",
                        "schema": {
                            "$defs": {
                                "Node": {
                                    "type": "object",
                                    "properties": {"next": {"$ref": "#/$defs/Node"}},
                                }
                            },
                            "$ref": "#/$defs/Node",
                        },
                    },
                }
            },
            "response_format.json_schema.schema",
            "refers to itself",
        ),
        (
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "f",
                            "parameters": {
                                "type": "object",
                                "properties": {"a": {"$ref": "https://example.com/a.json"}},
                            },
                        },
                    }
                ]
            },
            "tools[0].function.parameters",
            "not a local definition",
        ),
        (
            {"temperature": 0.5, "extensions": {"google": {"generationConfig": [1]}}},
            "extensions.google.generationConfig",
            "object",
        ),
        (
            {
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "extensions": {"google": {"tools": {}}},
            },
            "extensions.google.tools",
            "list",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and " " not in value else None,
)
def test_requests_gemini_cannot_express_are_client_errors(
    body: dict[str, Any], param: str, says: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        sent({**HELLO, **body})
    assert caught.value.status == 400
    assert caught.value.param == param
    assert says in caught.value.message


def doubling_definitions(depth: int) -> dict[str, Any]:
    """Each definition uses the next one twice: 2**depth nodes once inlined."""
    defs: dict[str, Any] = {
        f"D{i}": {
            "type": "object",
            "properties": {"a": {"$ref": f"#/$defs/D{i + 1}"}, "b": {"$ref": f"#/$defs/D{i + 1}"}},
        }
        for i in range(depth)
    }
    defs[f"D{depth}"] = {"type": "string"}
    return {"$defs": defs, "$ref": "#/$defs/D0"}


def test_a_schema_that_explodes_when_inlined_is_refused_at_once() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": doubling_definitions(25)}}
    with pytest.raises(InvalidRequest) as caught:
        sent({**HELLO, "tools": [tool]})
    assert caught.value.param == "tools[0].function.parameters"
    assert "more than 10000 subschemas" in caught.value.message


def test_a_schema_inlined_to_a_modest_size_is_translated() -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": doubling_definitions(3)}}
    parameters = sent({**HELLO, "tools": [tool]})["tools"][0]["functionDeclarations"][0][
        "parameters"
    ]
    leaf = parameters["properties"]["b"]["properties"]["a"]["properties"]["b"]
    assert leaf == {"type": "string"}


def test_odd_but_well_formed_json_schemas_do_not_crash_the_translation() -> None:
    parameters = {
        "$defs": {"Anything": True, "Odd": [1]},
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/Anything", "description": "any value"},
            "b": {"$ref": "#/$defs/Odd"},
        },
        "required": ["a", {"not": "a name"}, ["b"], 7],
    }
    tool = {"type": "function", "function": {"name": "f", "parameters": parameters}}
    declaration = sent({**HELLO, "tools": [tool]})["tools"][0]["functionDeclarations"][0]
    assert declaration["parameters"] == {
        "type": "object",
        "properties": {"a": {"description": "any value"}, "b": {}},
        "required": ["a"],
    }


# --------------------------------------------------------------------------- answers


@pytest.mark.parametrize("name", names("response_*.json"))
async def test_response_translation(
    name: str, provider: GeminiProvider, upstream: MockUpstream
) -> None:
    fixture = load(name)
    upstream.enqueue(JSONReply(fixture["gemini"]))
    response = await provider.complete(call_for(HELLO))
    body = json.loads(response.body)
    assert body == fixture["openai"]
    assert response.usage is not None
    assert msgspec.to_builtins(response.usage) == body["usage"]


async def test_complete_posts_the_translated_body(
    provider: GeminiProvider, upstream: MockUpstream
) -> None:
    fixture = load("request_tools.json")
    upstream.enqueue(JSONReply(load("response_text.json")["gemini"]))
    await provider.complete(call_for(fixture["openai"], drop=("parallel_tool_calls",)))
    request = upstream.last_request
    assert (request.method, request.path, request.query) == (
        "POST",
        f"/v1beta/models/{MODEL}:generateContent",
        {},
    )
    assert request.headers["x-goog-api-key"] == API_KEY
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers
    assert request.json == fixture["gemini"]


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("models/gemini-2.5-pro", "/v1beta/models/gemini-2.5-pro:generateContent"),
        ("tunedModels/my-tune-7", "/v1beta/tunedModels/my-tune-7:generateContent"),
    ],
)
async def test_model_paths(
    model: str, path: str, provider: GeminiProvider, upstream: MockUpstream
) -> None:
    upstream.enqueue(JSONReply(load("response_text.json")["gemini"]))
    await provider.complete(call_for(HELLO, model=model))
    assert upstream.last_request.path == path


@pytest.mark.parametrize(
    ("gemini", "openai"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("LANGUAGE", "stop"),
        ("OTHER", "stop"),
        ("FINISH_REASON_UNSPECIFIED", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reasons(gemini: str | None, openai: str) -> None:
    assert finish_reason(gemini) == openai


# --------------------------------------------------------------------------- streams


def pieces(data: str, size: int = 37) -> list[str | bytes | dict[str, Any]]:
    """The stream in small writes, so events and even CRLFs straddle reads."""
    return [data[i : i + size] for i in range(0, len(data), size)]


def sse_reply(name: str) -> SSEReply:
    data = (FIXTURES / name).read_bytes().decode()
    return SSEReply(chunks=pieces(data), send_done=False)


async def collect(provider: GeminiProvider, call: ProviderCall, into: list[StreamChunk]) -> None:
    async for chunk in provider.stream(call):
        assert b"\n" not in chunk.data
        into.append(chunk)


@pytest.mark.parametrize("name", ["stream_text", "stream_tools", "stream_blocked"])
async def test_stream_translation(
    name: str, provider: GeminiProvider, upstream: MockUpstream
) -> None:
    upstream.enqueue(sse_reply(f"{name}.sse"))
    chunks: list[StreamChunk] = []
    await collect(provider, call_for({**HELLO, "stream": True}), chunks)
    assert [json.loads(c.data) for c in chunks] == load(f"{name}.chunks.json")["chunks"]
    for chunk in chunks[:-1]:
        delta = json.loads(chunk.data)["choices"][0]["delta"]
        carries = bool(
            delta.get("content") or delta.get("reasoning_content") or delta.get("tool_calls")
        )
        assert chunk.has_output is carries
        assert not chunk.usage_only and chunk.usage is None
    closing = chunks[-1]
    assert closing.usage_only and closing.usage is not None and not closing.has_output
    assert msgspec.to_builtins(closing.usage) == json.loads(closing.data)["usage"]
    request = upstream.last_request
    assert (request.path, request.query) == (
        f"/v1beta/models/{MODEL}:streamGenerateContent",
        {"alt": "sse"},
    )
    assert request.headers["x-goog-api-key"] == API_KEY
    assert request.headers["accept"] == "text/event-stream"
    assert request.json == {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}


async def test_stream_without_finish_reason_is_cut(
    provider: GeminiProvider, upstream: MockUpstream
) -> None:
    upstream.enqueue(sse_reply("stream_cut.sse"))
    chunks: list[StreamChunk] = []
    with pytest.raises(errors.UpstreamStreamCut):
        await collect(provider, call_for({**HELLO, "stream": True}), chunks)
    expected = load("stream_text.chunks.json")["chunks"][:3]
    assert [json.loads(c.data) for c in chunks] == expected


async def test_error_in_place_of_a_fragment(
    provider: GeminiProvider, upstream: MockUpstream
) -> None:
    upstream.enqueue(sse_reply("stream_error.sse"))
    chunks: list[StreamChunk] = []
    with pytest.raises(errors.UpstreamUnavailable) as caught:
        await collect(provider, call_for({**HELLO, "stream": True}), chunks)
    assert caught.value.message == "gemini: The model is overloaded. Please try again later."
    assert [json.loads(c.data)["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""},
        {"content": "The"},
    ]


async def test_garbage_in_a_stream(provider: GeminiProvider, upstream: MockUpstream) -> None:
    upstream.enqueue(SSEReply(chunks=['data: {"candidates": 7}\n\n'], send_done=False))
    with pytest.raises(errors.UpstreamProtocolError):
        await collect(provider, call_for({**HELLO, "stream": True}), [])


async def test_garbage_answer(provider: GeminiProvider, upstream: MockUpstream) -> None:
    upstream.enqueue(RawReply(b"<html>hello</html>"))
    with pytest.raises(errors.UpstreamProtocolError):
        await provider.complete(call_for(HELLO))


# --------------------------------------------------------------------------- errors

ERROR_CASES = load("errors.json")["cases"]


def error_reply(case: dict[str, Any]) -> RawReply:
    body = case["body"]
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return RawReply(raw, status=case["status"], headers=case["headers"])


def check_error(error: ProviderError, case: dict[str, Any]) -> None:
    assert type(error).__name__ == case["error"]
    assert error.status == case["client_status"]
    assert error.message == case["message"]
    assert error.retry_after == case["retry_after"]
    assert error.upstream_status == case["status"]
    assert error.provider == "gemini"
    assert API_KEY not in error.message


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c["name"] for c in ERROR_CASES])
async def test_errors(
    case: dict[str, Any], provider: GeminiProvider, upstream: MockUpstream
) -> None:
    upstream.enqueue(error_reply(case))
    with pytest.raises(ProviderError) as caught:
        await provider.complete(call_for(HELLO))
    check_error(caught.value, case)


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c["name"] for c in ERROR_CASES])
async def test_errors_before_a_stream(
    case: dict[str, Any], provider: GeminiProvider, upstream: MockUpstream
) -> None:
    upstream.enqueue(error_reply(case))
    with pytest.raises(ProviderError) as caught:
        await collect(provider, call_for({**HELLO, "stream": True}), [])
    check_error(caught.value, case)


@pytest.mark.parametrize(
    ("delay", "seconds"),
    [("7s", 7.0), ("1.5s", 1.5), ("-3s", 0.0), ("nans", None), ("infs", None), ("7", None)],
)
def test_retry_delay_of_a_rate_limit(delay: str, seconds: float | None) -> None:
    """A delay that is not a number of seconds says nothing: the gateway's default
    applies, rather than a NaN that no `Retry-After` header can carry."""
    error = GeminiErrorBody(details=[GeminiErrorDetail(retry_delay=delay)])
    assert retry_after({}, error) == seconds


# --------------------------------------------------------------------------- config


def test_config_from_the_gateway_file() -> None:
    config = parse_config(
        {
            "auth": "none",
            "providers": {"google": {"kind": "gemini", "api_key": API_KEY, "timeout": 30}},
            "models": {
                "flash": {"deployments": [{"provider": "google", "model": "gemini-2.5-flash"}]}
            },
        }
    )
    provider_config = config.providers["google"]
    assert isinstance(provider_config, GeminiConfig)
    assert provider_config.base_url == "https://generativelanguage.googleapis.com/v1beta"
    assert provider_config.thinking_budgets == DEFAULT_THINKING_BUDGETS
    assert API_KEY not in repr(provider_config)
    assert isinstance(build_provider("google", provider_config), GeminiProvider)
