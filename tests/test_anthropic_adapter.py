"""The Anthropic adapter against golden payloads in Anthropic's documented shapes
(tests/fixtures/anthropic/README.md says where each comes from).

Translation is checked both ways on whole objects: OpenAI request → Anthropic body,
Anthropic message → OpenAI completion, Anthropic event stream → OpenAI chunks, Anthropic
error → gateway error. Stream and error cases run the real adapter over a loopback mock
upstream, so the HTTP call itself (path, headers, body) is checked too.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gateway.chat_decoding import decode_chat_body
from providers.anthropic.adapter import AnthropicProvider
from providers.anthropic.config import AnthropicConfig
from providers.anthropic.request import build_request
from providers.anthropic.response import openai_response
from providers.anthropic.stream import AnthropicStreamTranslator
from providers.anthropic.wire import response_decoder
from providers.base import ProviderCall, StreamChunk
from providers.chat_types import ChatRequest
from providers.config import ProviderConfig
from providers.errors import (
    InvalidRequest,
    ProviderError,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamStreamCut,
    UpstreamUnavailable,
)
from providers.registry import build_provider
from providers.sse import SSEDecoder
from tests.mock_upstream import JSONReply, MockUpstream, RawReply

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
MODEL = "claude-sonnet-4-20250514"
KEY = "sk-ant-api03-test-key"
CREATED = 1700000000
USER = {"role": "user", "content": "hi"}
_HELLO: dict[str, Any] = {"model": "m", "messages": [USER]}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def names(pattern: str) -> list[str]:
    return sorted(path.name for path in FIXTURES.glob(pattern))


def chat_request(body: dict[str, Any]) -> ChatRequest:
    request, _ = decode_chat_body(json.dumps(body).encode())
    return request


def provider_for(upstream: MockUpstream, **config: Any) -> AnthropicProvider:
    settings = {"base_url": f"http://127.0.0.1:{upstream.port}", "api_key": KEY, **config}
    return AnthropicProvider("anthropic", msgspec.convert(settings, AnthropicConfig))


def expected_headers(stream: bool) -> dict[str, str]:
    headers = {
        "x-api-key": KEY,
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
    }
    return {**headers, "accept": "text/event-stream" if stream else "application/json"}


def sent_headers(upstream: MockUpstream) -> dict[str, str]:
    wanted = ("x-api-key", "anthropic-version", "content-type", "accept", "authorization")
    return {k: v for k, v in upstream.last_request.headers.items() if k in wanted}


def chunk_view(chunk: StreamChunk, *, created: int | None = None) -> dict[str, Any]:
    data = json.loads(chunk.data)
    assert b"\n" not in chunk.data  # the gateway frames each chunk as one `data:` line
    if created is not None:
        # the adapter stamps chunks with the time the stream opened
        assert abs(data["created"] - created) <= 5
        data["created"] = CREATED
    return {"has_output": chunk.has_output, "usage_only": chunk.usage_only, "data": data}


async def collect(chunks: AsyncIterator[StreamChunk], into: list[StreamChunk]) -> None:
    async for chunk in chunks:
        into.append(chunk)


# --------------------------------------------------------------------------- requests


@pytest.mark.parametrize("name", names("request_*.json"))
def test_request_translation(name: str) -> None:
    case = fixture(name)
    request = chat_request(case["openai"])
    provider = AnthropicProvider("anthropic", AnthropicConfig(api_key=KEY))
    translated = build_request(request, MODEL, AnthropicConfig(), stream=request.stream)
    assert json.loads(translated.body) == case["anthropic"]
    assert provider.unsupported_params(request, provider.capabilities) == case["dropped"]


def test_json_schema_request_remembers_its_tool() -> None:
    request = chat_request(fixture("request_json_schema.json")["openai"])
    assert build_request(request, MODEL, AnthropicConfig(), stream=False).json_tool == "person"
    plain = chat_request(fixture("request_conversation.json")["openai"])
    assert build_request(plain, MODEL, AnthropicConfig(), stream=False).json_tool is None


def test_parameters_routing_drops_are_left_out() -> None:
    """A deployment whose model has no extended thinking gets no `thinking`, and the
    temperature that thinking would have displaced is sent after all."""
    request = chat_request(fixture("request_reasoning.json")["openai"])
    body = json.loads(
        build_request(
            request, MODEL, AnthropicConfig(), stream=False, dropped=("reasoning_effort", "seed")
        ).body
    )
    assert body == {
        "model": MODEL,
        "max_tokens": 1000,
        "messages": fixture("request_reasoning.json")["anthropic"]["messages"],
        "temperature": 0.2,
        "top_p": 0.98,
    }


@pytest.mark.parametrize(
    ("effort", "limit", "expected_thinking", "expected_max"),
    [
        ("low", None, 2000, 4096),  # the default limit is above the budget: unchanged
        ("low", 5000, 2000, 5000),
        ("medium", 100, 8000, 8100),  # raised above the budget by the client's limit
        ("minimal", None, 1024, 4096),
        ("none", 100, None, 100),
    ],
)
def test_thinking_budgets_come_from_config(
    effort: str, limit: int | None, expected_thinking: int | None, expected_max: int
) -> None:
    config = AnthropicConfig(thinking_budgets={"minimal": 1024, "low": 2000, "medium": 8000})
    body: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "reasoning_effort": effort,
    }
    if limit is not None:
        body["max_completion_tokens"] = limit
    sent = json.loads(build_request(chat_request(body), MODEL, config, stream=False).body)
    assert sent["max_tokens"] == expected_max
    if expected_thinking is None:
        assert "thinking" not in sent
    else:
        assert sent["thinking"] == {"type": "enabled", "budget_tokens": expected_thinking}


def test_thinking_budget_below_anthropics_minimum_is_refused_by_config() -> None:
    with pytest.raises(msgspec.ValidationError, match="thinking_budgets"):
        msgspec.convert({"kind": "anthropic", "thinking_budgets": {"low": 500}}, ProviderConfig)


def test_default_max_tokens_comes_from_config() -> None:
    request = chat_request({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    config = AnthropicConfig(default_max_tokens=1234)
    assert json.loads(build_request(request, MODEL, config, stream=False).body) == {
        "model": MODEL,
        "max_tokens": 1234,
        "messages": [{"role": "user", "content": "hi"}],
    }


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (
            {"messages": [{"role": "user", "content": [
                {"type": "text", "text": "listen"},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
            ]}]},
            "messages[0].content[1]",
            "unsupported_content",
        ),
        (
            {"messages": [{"role": "user", "content": [
                {"type": "file", "file": {"file_id": "file-abc123"}},
            ]}]},
            "messages[0].content[0].file.file_id",
            "unsupported_content",
        ),
        (
            {"messages": [{"role": "user", "content": [
                {"type": "file", "file": {"file_data": "data:text/csv;base64,YSxiCg=="}},
            ]}]},
            "messages[0].content[0].file.file_data",
            "unsupported_content",
        ),
        (
            {"messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "ftp://example.com/cat.png"}},
            ]}]},
            "messages[0].content[0].image_url.url",
            "invalid_value",
        ),
        (
            {"messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png,not-base64"}},
            ]}]},
            "messages[0].content[0].image_url.url",
            "invalid_value",
        ),
        (
            {"messages": [USER, {"role": "assistant", "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "f", "arguments": "{\"city\": \"Par"}},
            ]}]},
            "messages[1].tool_calls[0].function.arguments",
            "invalid_tool_arguments",
        ),
        (
            {"messages": [USER, {"role": "assistant", "tool_calls": [
                {"id": "call_1", "type": "function",
                 "function": {"name": "f", "arguments": "[1, 2]"}},
            ]}]},
            "messages[1].tool_calls[0].function.arguments",
            "invalid_tool_arguments",
        ),
        (
            {"messages": [USER, {"role": "function", "name": "f", "content": "42"}]},
            "messages[1]",
            "unsupported_message",
        ),
        (
            {"messages": [USER], "reasoning_effort": "extreme"},
            "reasoning_effort",
            "invalid_value",
        ),
        (
            {"messages": [USER],
             "tools": [{"type": "function", "function": {"name": "answer"}}],
             "response_format": {"type": "json_schema", "json_schema": {"name": "answer"}}},
            "response_format.json_schema.name",
            "conflicting_fields",
        ),
    ],
    ids=[
        "audio", "file_id", "csv_file", "ftp_image", "data_url_not_base64",
        "truncated_arguments", "arguments_not_an_object", "function_message",
        "unknown_effort", "schema_name_is_a_tool",
    ],
)  # fmt: skip
def test_untranslatable_requests_are_typed_400s(
    body: dict[str, Any], param: str, code: str
) -> None:
    request = chat_request({"model": "m", **body})
    with pytest.raises(InvalidRequest) as caught:
        build_request(request, MODEL, AnthropicConfig(), stream=False)
    error = caught.value
    assert (error.status, error.param, error.code) == (400, param, code)
    assert param.split(".")[0] in error.message


def test_empty_tool_arguments_mean_no_input() -> None:
    request = chat_request(
        {
            "model": "m",
            "messages": [
                USER,
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "now", "arguments": ""},
                        }
                    ],
                },
            ],
        }
    )
    body = json.loads(build_request(request, MODEL, AnthropicConfig(), stream=False).body)
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "c1", "name": "now", "input": {}}],
    }


# --------------------------------------------------------------------------- responses


@pytest.mark.parametrize("name", names("response_*.json"))
def test_response_translation(name: str) -> None:
    case = fixture(name)
    answer = response_decoder.decode(json.dumps(case["anthropic"]).encode())
    response = openai_response(answer, json_tool=case["json_tool"], created=CREATED)
    assert json.loads(msgspec.json.encode(response)) == case["openai"]


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("refusal", "content_filter"),
        ("tool_use", "stop"),  # no tool call in the content: nothing for the client to run
        (None, "stop"),
        ("a_reason_added_later", "stop"),
    ],
)
def test_stop_reasons(stop_reason: str | None, finish_reason: str) -> None:
    answer = response_decoder.decode(
        json.dumps(
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "content": [{"type": "text", "text": "x"}],
                "stop_reason": stop_reason,
                "usage": {"input_tokens": 1, "output_tokens": 1},
            }
        ).encode()
    )
    response = openai_response(answer, json_tool=None, created=CREATED)
    assert response.choices[0].finish_reason == finish_reason


async def test_complete_over_http(upstream: MockUpstream) -> None:
    case = fixture("response_tool_use.json")
    upstream.enqueue(JSONReply(case["anthropic"]))
    provider = provider_for(upstream)
    request = chat_request(fixture("request_conversation.json")["openai"])
    try:
        answer = await provider.complete(ProviderCall(request=request, model=MODEL))
    finally:
        await provider.aclose()
    sent = upstream.last_request
    assert (sent.method, sent.path, sent.query) == ("POST", "/v1/messages", {})
    assert sent_headers(upstream) == expected_headers(stream=False)
    assert sent.json == fixture("request_conversation.json")["anthropic"]
    body = json.loads(answer.body)
    assert abs(body["created"] - time.time()) < 5
    assert {**body, "created": CREATED} == case["openai"]
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (472, 91)


async def test_complete_rejects_a_body_that_is_not_a_message(upstream: MockUpstream) -> None:
    upstream.enqueue(RawReply(b'{"choices": []}'))
    provider = provider_for(upstream)
    try:
        with pytest.raises(UpstreamProtocolError):
            await provider.complete(ProviderCall(request=chat_request(_HELLO), model=MODEL))
    finally:
        await provider.aclose()


# --------------------------------------------------------------------------- streams

_STREAM_REQUESTS = {
    "stream_json_schema.sse": fixture("request_json_schema.json")["openai"],
}


async def run_stream(
    upstream: MockUpstream, sse: bytes, request: dict[str, Any]
) -> tuple[list[StreamChunk], BaseException | None]:
    upstream.enqueue(RawReply(sse, content_type="text/event-stream"))
    provider = provider_for(upstream)
    chunks: list[StreamChunk] = []
    call = ProviderCall(request=chat_request({**request, "stream": True}), model=MODEL)
    try:
        await collect(provider.stream(call), chunks)
    except ProviderError as exc:
        return chunks, exc
    finally:
        await provider.aclose()
    return chunks, None


@pytest.mark.parametrize("name", names("stream_*.sse"))
async def test_stream_translation(upstream: MockUpstream, name: str) -> None:
    request = _STREAM_REQUESTS.get(name, _HELLO)
    chunks, error = await run_stream(upstream, (FIXTURES / name).read_bytes(), request)
    expected = fixture(name.replace(".sse", ".chunks.json"))
    assert [chunk_view(c, created=int(time.time())) for c in chunks] == expected
    if name == "stream_error.sse":
        assert isinstance(error, UpstreamUnavailable)
        assert error.message == "anthropic: Overloaded"
    elif name == "stream_cut.sse":
        assert isinstance(error, UpstreamStreamCut)
    else:
        assert error is None
        # the closing chunk hands routing the usage it carries
        assert msgspec.to_builtins(chunks[-1].usage) == expected[-1]["data"]["usage"]
    sent = upstream.last_request
    assert sent.path == "/v1/messages"
    assert sent_headers(upstream) == expected_headers(stream=True)
    assert sent.json["stream"] is True and sent.json["model"] == MODEL


@pytest.mark.parametrize("name", names("stream_*.sse"))
def test_stream_translation_does_not_depend_on_how_bytes_arrive(name: str) -> None:
    """Fed seven bytes at a time (events split anywhere, even inside UTF-8 sequences of
    a `data:` line), the translator yields the same chunks as from whole events."""
    json_tool = "person" if name == "stream_json_schema.sse" else None
    translator = AnthropicStreamTranslator(
        provider="anthropic", json_tool=json_tool, created=CREATED
    )
    decoder = SSEDecoder()
    raw = (FIXTURES / name).read_bytes()
    chunks: list[StreamChunk] = []
    with pytest.raises(ProviderError) if name == "stream_error.sse" else nullcontext():
        for start in range(0, len(raw), 7):
            for event in decoder.feed_block(raw[start : start + 7]):
                chunks += translator.feed(event.data)
    assert [chunk_view(c) for c in chunks] == fixture(name.replace(".sse", ".chunks.json"))
    assert translator.finished is (name not in ("stream_error.sse", "stream_cut.sse"))


async def test_chunks_of_one_network_read_are_marked_as_buffered(upstream: MockUpstream) -> None:
    """The whole stream arrives in one read: every chunk but the last says more follow."""
    chunks, error = await run_stream(upstream, (FIXTURES / "stream_text.sse").read_bytes(), _HELLO)
    assert error is None
    assert [c.more_buffered for c in chunks] == [True, True, True, True, False]


@pytest.mark.parametrize(
    ("error_type", "expected"),
    [
        ("overloaded_error", UpstreamUnavailable),
        ("api_error", UpstreamUnavailable),
        ("rate_limit_error", UpstreamRateLimited),
        ("some_future_error", UpstreamUnavailable),
    ],
)
def test_in_stream_error_events(error_type: str, expected: type[ProviderError]) -> None:
    translator = AnthropicStreamTranslator(provider="anthropic", json_tool=None, created=CREATED)
    event = {"type": "error", "error": {"type": error_type, "message": "went wrong"}}
    with pytest.raises(expected) as caught:
        translator.feed(json.dumps(event).encode())
    assert type(caught.value) is expected
    assert caught.value.message == "anthropic: went wrong"


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b'{"no_type": 1}',
        b'{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}}',
        b'{"type": "message_start"}',
    ],
    ids=["garbage", "no_type", "delta_before_message_start", "start_without_message"],
)
def test_malformed_stream_events_are_protocol_errors(data: bytes) -> None:
    translator = AnthropicStreamTranslator(provider="anthropic", json_tool=None, created=CREATED)
    with pytest.raises(UpstreamProtocolError):
        translator.feed(data)


def test_unknown_events_and_blocks_are_skipped() -> None:
    translator = AnthropicStreamTranslator(provider="anthropic", json_tool=None, created=CREATED)
    start = {"type": "message_start", "message": {"id": "msg_1", "model": MODEL, "usage": {}}}
    assert len(translator.feed(json.dumps(start).encode())) == 1
    events: list[dict[str, Any]] = [
        {"type": "some_new_event", "payload": 1},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search"}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "input_json_delta", "partial_json": "{\"query\": \"x\"}"}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "citations_delta", "citation": {}}},
        {"type": "content_block_stop", "index": 0},
    ]  # fmt: skip
    for event in events:
        assert translator.feed(json.dumps(event).encode()) == []


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("case", fixture("errors.json")["cases"], ids=lambda case: case["name"])
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_http_errors(upstream: MockUpstream, case: dict[str, Any], stream: bool) -> None:
    body = case["body"]
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    content_type = "text/html" if isinstance(body, str) else "application/json"
    upstream.enqueue(
        RawReply(raw, status=case["status"], headers=case["headers"], content_type=content_type)
    )
    provider = provider_for(upstream)
    call = ProviderCall(request=chat_request({**_HELLO, "stream": stream}), model=MODEL)
    try:
        with pytest.raises(ProviderError) as caught:
            if stream:
                await collect(provider.stream(call), [])
            else:
                await provider.complete(call)
    finally:
        await provider.aclose()
    error, expect = caught.value, case["expect"]
    assert type(error).__name__ == expect["class"]
    assert (error.status, error.code, error.retry_after) == (
        expect["status"],
        expect["code"],
        expect["retry_after"],
    )
    assert error.message == expect["said"]
    assert error.upstream_status == case["status"]
    assert KEY not in error.message


# --------------------------------------------------------------------------- config


def test_config_from_the_provider_union_builds_the_adapter() -> None:
    config = msgspec.convert(
        {"kind": "anthropic", "api_key": KEY, "headers": {"anthropic-beta": "x"}}, ProviderConfig
    )
    assert isinstance(config, AnthropicConfig)
    assert config.base_url == "https://api.anthropic.com"
    assert config.anthropic_version == "2023-06-01"
    assert config.default_max_tokens == 4096
    assert config.thinking_budgets == {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
    assert isinstance(build_provider("claude", config), AnthropicProvider)
    assert KEY not in repr(config)


async def test_configured_headers_and_a_base_url_with_its_version(upstream: MockUpstream) -> None:
    upstream.enqueue(JSONReply(fixture("response_text_cached.json")["anthropic"]))
    provider = provider_for(
        upstream,
        base_url=f"http://127.0.0.1:{upstream.port}/v1/",
        anthropic_version="2024-01-01",
        headers={"anthropic-beta": "prompt-caching-2024-07-31"},
    )
    try:
        await provider.complete(ProviderCall(request=chat_request(_HELLO), model=MODEL))
    finally:
        await provider.aclose()
    sent = upstream.last_request
    assert sent.path == "/v1/messages"
    assert sent.headers["anthropic-version"] == "2024-01-01"
    assert sent.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert "authorization" not in sent.headers


def test_capabilities() -> None:
    capabilities = AnthropicProvider.capabilities
    assert (capabilities.logprobs, capabilities.multiple_choices) == (False, False)
    assert capabilities.reasoning and capabilities.json_schema and capabilities.vision
    assert capabilities.tools
    request = chat_request({**_HELLO, "n": 3, "top_logprobs": 2, "logprobs": True})
    provider = AnthropicProvider("anthropic", AnthropicConfig())
    assert provider.unsupported_params(request, capabilities) == ["logprobs", "top_logprobs", "n"]


def test_a_model_without_thinking_keeps_its_temperature() -> None:
    """When routing drops reasoning_effort (the model has no extended thinking), the
    temperature that thinking would have displaced is not reported as dropped."""
    request = chat_request({**_HELLO, "reasoning_effort": "high", "temperature": 0.2})
    provider = AnthropicProvider("anthropic", AnthropicConfig())
    no_thinking = msgspec.structs.replace(provider.capabilities, reasoning=False)
    assert provider.unsupported_params(request, no_thinking) == ["reasoning_effort"]
    assert provider.unsupported_params(request, provider.capabilities) == ["temperature"]


# --------------------------------------------------------------------------- review fixes


def _stream_events(translator: AnthropicStreamTranslator, events: list[dict[str, Any]]) -> str:
    """What a client accumulates from the chunks: tool arguments, else content."""
    arguments, content = "", ""
    for event in events:
        for chunk in translator.feed(json.dumps(event).encode()):
            for choice in json.loads(chunk.data)["choices"]:
                content += choice["delta"].get("content") or ""
                for call in choice["delta"].get("tool_calls", []):
                    arguments += call["function"].get("arguments", "")
    return arguments or content


@pytest.mark.parametrize("json_tool", [None, "now"], ids=["tool_call", "schema_tool"])
def test_streamed_tool_call_without_input_has_empty_object_arguments(
    json_tool: str | None,
) -> None:
    """Anthropic streams a tool without input as one `partial_json: ""`; clients parse the
    arguments (or the schema tool's content) as JSON, so they get "{}" as from `complete`."""
    translator = AnthropicStreamTranslator(provider="anthropic", json_tool=json_tool, created=1)
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_1", "model": MODEL, "usage": {}}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {}},
        {"type": "message_stop"},
    ]  # fmt: skip
    assert _stream_events(translator, events) == "{}"


def test_streamed_tool_input_is_not_followed_by_an_extra_object() -> None:
    translator = AnthropicStreamTranslator(provider="anthropic", json_tool=None, created=1)
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_1", "model": MODEL, "usage": {}}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "input_json_delta", "partial_json": "{\"a\": 1}"}},
        {"type": "content_block_stop", "index": 0},
    ]  # fmt: skip
    assert _stream_events(translator, events) == '{"a": 1}'


def test_tool_ids_from_other_providers_match_anthropics_pattern() -> None:
    """Anthropic takes tool_use ids of `[a-zA-Z0-9_-]` only; a conversation begun on
    another provider carries its ids (`functions.get_time:0`). Call and result map alike."""
    request = chat_request(
        {
            "model": "m",
            "messages": [
                USER,
                {"role": "assistant", "tool_calls": [{"id": "functions.get_time:0",
                 "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "functions.get_time:0", "content": "noon"},
            ],
        }
    )  # fmt: skip
    body = json.loads(build_request(request, MODEL, AnthropicConfig(), stream=False).body)
    assert body["messages"][1]["content"][0]["id"] == "functions_get_time_0"
    assert body["messages"][2]["content"][0]["tool_use_id"] == "functions_get_time_0"


def test_temperature_above_anthropics_range_is_sent_as_its_highest() -> None:
    """OpenAI takes 0-2, Anthropic 0-1: 1.5 would be a 400 that no fallback may retry."""
    request = chat_request({**_HELLO, "temperature": 1.5})
    body = json.loads(build_request(request, MODEL, AnthropicConfig(), stream=False).body)
    assert body["temperature"] == 1.0
    provider = AnthropicProvider("anthropic", AnthropicConfig())
    assert provider.unsupported_params(request, provider.capabilities) == []


_TOOL_LOOP: list[dict[str, Any]] = [
    USER,
    {"role": "assistant", "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": {"name": "now", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "toolu_1", "content": "noon"},
]  # fmt: skip


def test_no_thinking_inside_a_tool_loop() -> None:
    """With thinking on, Anthropic wants the assistant turn that called the tools to open
    with its signed thinking block, which OpenAI messages cannot carry back: thinking is
    left out (and named) until the loop ends."""
    request = chat_request(
        {"model": "m", "messages": _TOOL_LOOP, "reasoning_effort": "low", "temperature": 0.3}
    )
    body = json.loads(build_request(request, MODEL, AnthropicConfig(), stream=False).body)
    assert "thinking" not in body
    assert body["temperature"] == 0.3
    provider = AnthropicProvider("anthropic", AnthropicConfig())
    assert provider.unsupported_params(request, provider.capabilities) == ["reasoning_effort"]
    # once the model has answered the results, the next turn may think again
    after = [*_TOOL_LOOP, {"role": "assistant", "content": "It is noon."}, USER]
    request = chat_request({"model": "m", "messages": after, "reasoning_effort": "low"})
    body = json.loads(build_request(request, MODEL, AnthropicConfig(), stream=False).body)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_empty_texts_are_left_out() -> None:
    """Anthropic answers 400 "text content blocks must be non-empty" to what OpenAI takes."""
    request = chat_request(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": ""},
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": ""},
                {"role": "user", "content": [{"type": "text", "text": ""},
                 {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
            ],
        }
    )  # fmt: skip
    body = json.loads(build_request(request, MODEL, AnthropicConfig(), stream=False).body)
    assert body["system"] == "Be brief."
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
            ],
        }
    ]
