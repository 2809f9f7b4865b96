"""The Bedrock adapter against golden payloads in the Converse API's documented shapes
(tests/fixtures/bedrock/README.md says where each comes from).

Translation is checked both ways on whole objects: OpenAI request → Converse body,
Converse answer → OpenAI completion, converse-stream frames (split at every byte
boundary) → OpenAI chunks, Bedrock errors → gateway errors; plus SigV4 signing, the
model id in the URL and the config, including a gateway without botocore.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from yarl import URL

from gateway.chat_decoding import decode_chat_body
from gateway.config import ConfigError, parse_config
from providers import errors
from providers.base import StreamChunk
from providers.bedrock.adapter import BedrockProvider
from providers.bedrock.config import BedrockConfig
from providers.bedrock.errors import classify_http_error, classify_stream_exception
from providers.bedrock.eventstream import CONVERSE_EVENTS, EventStreamDecoder
from providers.bedrock.request import build_request
from providers.bedrock.response import finish_reason, openai_response
from providers.bedrock.signing import BedrockSigner, model_path
from providers.bedrock.stream import StreamTranslator, openai_chunks
from providers.bedrock.wire import response_decoder
from providers.chat_types import ChatRequest
from providers.errors import (
    InvalidRequest,
    UpstreamAuthFailed,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamRejectedRequest,
    UpstreamStreamCut,
    UpstreamUnavailable,
)
from tests.bedrock_helpers import (
    FIXTURES,
    event_frame,
    expected_authorization,
    frame,
    frames,
    load,
)

REGION = "us-east-1"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN"
CREATED = 1700000000
RESPONSE_ID = "chatcmpl-req-1"
CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
CONFIG = BedrockConfig(region=REGION, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY)


def names(pattern: str) -> list[str]:
    return sorted(path.name for path in FIXTURES.glob(pattern))


def chat_request(body: dict[str, Any]) -> ChatRequest:
    request, _ = decode_chat_body(json.dumps({"model": "m", **body}).encode())
    return request


def upstream_body(body: dict[str, Any], model: str = CLAUDE, drop: tuple[str, ...] = ()) -> Any:
    return json.loads(build_request(chat_request(body), model, CONFIG, drop).body)


def hello(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}


# --------------------------------------------------------------------------- requests


@pytest.mark.parametrize("name", names("request_*.json"))
def test_request_translation(name: str) -> None:
    case = load(name)
    request = chat_request(case["openai"])
    call = build_request(request, case["model"], CONFIG)
    assert json.loads(call.body) == case["bedrock"]
    assert call.json_tool == case.get("json_tool")
    provider = BedrockProvider("bedrock", CONFIG)
    assert provider.unsupported_params(request, provider.capabilities) == case["dropped"]


def test_parameters_routing_dropped_are_left_out() -> None:
    case = load("request_reasoning.json")
    dropped = ("reasoning_effort", "stop")
    body = upstream_body({**case["openai"], "stop": "END"}, case["model"], dropped)
    assert "additionalModelRequestFields" not in body
    # without thinking, temperature and top_p are sent as asked
    assert body["inferenceConfig"] == {"maxTokens": 2000, "temperature": 0.7, "topP": 0.5}


def test_reasoning_effort_only_reaches_claude() -> None:
    body = upstream_body(hello(reasoning_effort="high", temperature=0.2), "meta.llama3-3-70b-v1:0")
    assert "additionalModelRequestFields" not in body
    assert body["inferenceConfig"] == {"temperature": 0.2}
    claude = upstream_body(hello(reasoning_effort="high"), "global.anthropic.claude-sonnet-4-v1:0")
    assert claude["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 16384}
    }
    assert claude["inferenceConfig"] == {"maxTokens": 20480}  # 4096 default + the budget
    assert upstream_body(hello(reasoning_effort="none"), CLAUDE) == {
        "messages": [{"role": "user", "content": [{"text": "hi"}]}]
    }


def test_no_reasoning_capability_names_only_the_effort() -> None:
    provider = BedrockProvider("bedrock", CONFIG)
    request = chat_request(hello(reasoning_effort="low", temperature=0.5))
    llama = msgspec.structs.replace(provider.capabilities, reasoning=False)
    assert provider.unsupported_params(request, llama) == ["reasoning_effort"]
    assert provider.unsupported_params(request, provider.capabilities) == ["temperature"]


def test_tool_choice_variants() -> None:
    tools = [{"type": "function", "function": {"name": "get_time"}}]
    named = upstream_body(
        hello(tools=tools, tool_choice={"type": "function", "function": {"name": "get_time"}})
    )
    assert named["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_time",
                    "inputSchema": {"json": {"type": "object", "properties": {}}},
                }
            }
        ],
        "toolChoice": {"tool": {"name": "get_time"}},
    }
    assert upstream_body(hello(tools=tools))["toolConfig"] == {
        "tools": named["toolConfig"]["tools"]
    }
    assert upstream_body(hello(tools=tools, tool_choice="auto"))["toolConfig"]["toolChoice"] == {
        "auto": {}
    }
    assert "toolConfig" not in upstream_body(hello(tools=tools, tool_choice="none"))


def test_tool_choice_none_still_declares_tools_the_conversation_used() -> None:
    messages = [
        {"role": "user", "content": "time?"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "call|1", "type": "function", "function": {"name": "t", "arguments": ""}}
            ],
        },
        {"role": "tool", "tool_call_id": "call|1", "content": ""},
    ]
    tools = [{"type": "function", "function": {"name": "t", "parameters": {"type": "object"}}}]
    body = upstream_body({"messages": messages, "tools": tools, "tool_choice": "none"})
    assert body["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "t", "inputSchema": {"json": {"type": "object"}}}}]
    }
    # ids outside Converse's pattern are mapped alike on the call and on its result;
    # arguments "" is an empty input, and an empty result still says something
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [{"toolUse": {"toolUseId": "call_1", "name": "t", "input": {}}}],
        },
        {
            "role": "user",
            "content": [{"toolResult": {"toolUseId": "call_1", "content": [{"text": "(empty)"}]}}],
        },
    ]


def test_json_schema_with_client_tools_makes_the_model_use_one_of_them() -> None:
    tools = [{"type": "function", "function": {"name": "lookup"}}]
    schema = {"type": "json_schema", "json_schema": {"name": "answer", "description": "The answer"}}
    config = upstream_body(hello(tools=tools, response_format=schema))["toolConfig"]
    assert [t["toolSpec"]["name"] for t in config["tools"]] == ["lookup", "answer"]
    assert config["tools"][1]["toolSpec"]["description"] == "The answer"
    assert config["toolChoice"] == {"any": {}}


def test_extensions_replace_translated_fields() -> None:
    body = upstream_body(
        hello(
            max_tokens=5,
            extensions={"bedrock": {"inferenceConfig": {"maxTokens": 9}, "requestMetadata": {}}},
        )
    )
    assert body["inferenceConfig"] == {"maxTokens": 9}
    assert body["requestMetadata"] == {}


_IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}


@pytest.mark.parametrize(
    ("body", "param", "mentions"),
    [
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}, _IMAGE]}]},
            "messages[0].content[1].image_url.url",
            "cannot fetch a url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/bmp;base64,Qk0="},
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
            "image/bmp",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]}
                ]
            },
            "messages[0].content[0].file",
            "file_id",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_audio", "input_audio": {"data": "AA==", "format": "x"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].input_audio.format",
            "audio format",
        ),
        (
            {"messages": [{"role": "function", "name": "f", "content": "1"}]},
            "messages[0].role",
            "'function'",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "t", "arguments": "[1]"},
                            }
                        ],
                    },
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
            "json object",
        ),
        (
            hello(
                tools=[{"type": "function", "function": {"name": "dup"}}],
                response_format={"type": "json_schema", "json_schema": {"name": "dup"}},
            ),
            "response_format.json_schema.name",
            "also a tool",
        ),
        (hello(reasoning_effort="extreme"), "reasoning_effort", "extreme"),
    ],
    ids=[
        "image-url",
        "image-type",
        "file-id",
        "audio-format",
        "function-role",
        "tool-arguments",
        "schema-name",
        "effort",
    ],
)
def test_requests_converse_cannot_express(body: dict[str, Any], param: str, mentions: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        build_request(chat_request(body), CLAUDE, CONFIG)
    assert caught.value.status == 400
    assert caught.value.param == param
    assert mentions in caught.value.message.lower()


# --------------------------------------------------------------------------- responses


@pytest.mark.parametrize("name", names("response_*.json"))
def test_response_translation(name: str) -> None:
    case = load(name)
    # compact, as AWS sends JSON
    answer = response_decoder.decode(json.dumps(case["bedrock"], separators=(",", ":")).encode())
    response = openai_response(
        answer,
        response_id=RESPONSE_ID,
        model=case["model"],
        created=CREATED,
        json_tool=case["json_tool"],
        provider="bedrock",
    )
    assert json.loads(msgspec.json.encode(response)) == case["openai"]


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ],
)
def test_stop_reasons(stop_reason: str, expected: str) -> None:
    assert finish_reason(stop_reason, answered_with_json_tool=False, provider="b") == expected


@pytest.mark.parametrize("stop_reason", ["malformed_model_output", "malformed_tool_use"])
def test_malformed_output_is_worth_another_try(stop_reason: str) -> None:
    with pytest.raises(UpstreamUnavailable, match=stop_reason):
        finish_reason(stop_reason, answered_with_json_tool=False, provider="b")


# --------------------------------------------------------------------------- streams


async def _blocks(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


async def run_stream(
    pieces: list[bytes], model: str, json_tool: str | None
) -> tuple[list[StreamChunk], Exception | None]:
    translator = StreamTranslator(
        response_id=RESPONSE_ID,
        model=model,
        created=CREATED,
        json_tool=json_tool,
        provider="bedrock",
    )
    chunks: list[StreamChunk] = []
    try:
        async for chunk in openai_chunks(_blocks(pieces), translator, "bedrock"):
            chunks.append(chunk)
    except errors.ProviderError as exc:
        return chunks, exc
    return chunks, None


def check_chunks(chunks: list[StreamChunk], case: dict[str, Any]) -> None:
    assert [json.loads(c.data) for c in chunks] == case["chunks"]
    assert all(b"\n" not in c.data for c in chunks)
    for chunk, expected in zip(chunks, case["chunks"], strict=True):
        delta = expected["choices"][0]["delta"] if expected["choices"] else {}
        shows = bool(
            delta.get("content") or delta.get("tool_calls") or delta.get("reasoning_content")
        )
        assert chunk.has_output is shows
        assert chunk.usage_only is (expected["choices"] == [])
        if chunk.usage_only:
            assert chunk.usage is not None
            assert json.loads(msgspec.json.encode(chunk.usage)) == expected["usage"]


def check_error(error: Exception | None, case: dict[str, Any]) -> None:
    if "error" not in case:
        assert error is None
        return
    assert type(error).__name__ == case["error"]["class"]
    assert str(error) == case["error"]["message"]


@pytest.mark.parametrize("name", names("stream_*.json"))
async def test_stream_translation(name: str) -> None:
    case = load(name)
    body = frames(case["events"])
    chunks, error = await run_stream([body], case["model"], case["json_tool"])
    check_chunks(chunks, case)
    check_error(error, case)
    # one block held every frame: each chunk but the last says more are ready
    assert [c.more_buffered for c in chunks] == [True] * (len(chunks) - 1) + [False]


@pytest.mark.parametrize("name", names("stream_*.json"))
async def test_stream_frames_split_at_any_byte(name: str) -> None:
    """Network reads cut frames anywhere: in the prelude, a header, the payload, a CRC."""
    case = load(name)
    body = frames(case["events"])
    splits = [[body[:cut], body[cut:]] for cut in range(1, len(body))]
    splits.append([body[i : i + 1] for i in range(len(body))])
    splits.append([body[i : i + 7] for i in range(0, len(body), 7)])
    for pieces in splits:
        chunks, error = await run_stream(pieces, case["model"], case["json_tool"])
        check_chunks(chunks, case)
        check_error(error, case)


async def test_stream_without_message_stop_is_cut() -> None:
    events = load("stream_text.json")["events"]
    body = frames(events[:3])
    chunks, error = await run_stream([body], CLAUDE, None)
    assert len(chunks) == 3
    assert isinstance(error, UpstreamStreamCut)


async def test_stream_ending_inside_a_frame_is_cut() -> None:
    body = frames(load("stream_text.json")["events"])
    chunks, error = await run_stream([body[:-5]], CLAUDE, None)
    assert isinstance(error, UpstreamStreamCut)
    assert json.loads(chunks[-1].data)["choices"][0]["finish_reason"] == "stop"


async def test_stream_with_a_bad_checksum_is_garbage() -> None:
    good = event_frame("messageStart", {"role": "assistant"})
    broken = good[:-1] + bytes([good[-1] ^ 0xFF])
    _, error = await run_stream([broken], CLAUDE, None)
    assert isinstance(error, UpstreamProtocolError)
    assert "broken event-stream frame" in str(error)


async def test_stream_event_off_its_documented_shape_is_garbage() -> None:
    body = event_frame("contentBlockDelta", {"delta": {"text": "no index"}})
    _, error = await run_stream([body], CLAUDE, None)
    assert isinstance(error, UpstreamProtocolError)


async def test_stream_skips_event_types_it_does_not_know() -> None:
    case = load("stream_text.json")
    body = frames(case["events"][:1]) + event_frame("futureEvent", {"x": 1})
    body += frames(case["events"][1:])
    chunks, error = await run_stream([body], case["model"], None)
    assert error is None
    check_chunks(chunks, case)


@pytest.mark.parametrize(
    ("exception_type", "error_class"),
    [
        ("throttlingException", UpstreamRateLimited),
        ("validationException", UpstreamRejectedRequest),
        ("modelStreamErrorException", UpstreamUnavailable),
        ("serviceUnavailableException", UpstreamUnavailable),
        ("internalServerException", UpstreamUnavailable),
        ("somethingNewException", UpstreamUnavailable),
    ],
)
def test_stream_exception_types(exception_type: str, error_class: type[Exception]) -> None:
    payload = json.dumps(
        {"message": "failed", "originalStatusCode": 500, "originalMessage": "model crashed"}
    ).encode()
    error = classify_stream_exception(exception_type, payload, "bedrock")
    assert type(error) is error_class
    assert str(error) == "bedrock: failed (model crashed)"


async def test_framing_error_message_ends_the_stream() -> None:
    start = event_frame("messageStart", {"role": "assistant"})
    error_frame = frame(
        {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"}, b""
    )
    chunks, error = await run_stream([start + error_frame], CLAUDE, None)
    assert len(chunks) == 1
    assert isinstance(error, UpstreamUnavailable)
    assert str(error) == "bedrock: boom"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "case", load("errors.json")["cases"], ids=lambda c: f"{c['status']}-{c['expected']['class']}"
)
def test_http_errors(case: dict[str, Any]) -> None:
    body = json.dumps(case["body"]).encode() if case["body"] is not None else b""
    error = classify_http_error(case["status"], case["headers"], body, "bedrock")
    expected = case["expected"]
    assert type(error).__name__ == expected["class"]
    assert (error.status, error.code, error.message) == (
        expected["status"],
        expected["code"],
        expected["message"],
    )
    assert error.retry_after == expected["retry_after"]
    assert error.upstream_status == case["status"]


# --------------------------------------------------------------------------- signing and URLs


async def test_signature_covers_what_is_sent() -> None:
    signer = BedrockSigner("bedrock", REGION, ACCESS_KEY, SECRET_KEY, TOKEN)
    url = "https://bedrock-runtime.us-east-1.amazonaws.com" + model_path(CLAUDE, "converse")
    body = b'{"messages":[]}'
    headers = await signer.sign(url, body, {"content-type": "application/json", "x-extra": "1"})
    assert headers["X-Amz-Security-Token"] == TOKEN
    assert headers["content-type"] == "application/json"
    assert (
        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-extra,"
        in headers["Authorization"]
    )
    assert headers["Authorization"] == expected_authorization(
        "POST",
        url,
        headers,
        body,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        token=TOKEN,
        region=REGION,
    )
    # one changed byte of body is another signature
    assert headers["Authorization"] != expected_authorization(
        "POST",
        url,
        headers,
        body + b" ",
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        token=TOKEN,
        region=REGION,
    )


async def test_credentials_from_the_default_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENTKEY01")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "environment-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    signer = BedrockSigner("bedrock", REGION, None, None, None)
    headers = await signer.sign("https://example.com/model/m/converse", b"{}", {})
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAENVIRONMENTKEY01/")
    assert "X-Amz-Security-Token" not in headers


async def test_no_credentials_anywhere_is_an_auth_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    signer = BedrockSigner("bedrock", REGION, None, None, None)
    with pytest.raises(UpstreamAuthFailed, match="no AWS credentials"):
        await signer.sign("https://example.com/model/m/converse", b"{}", {})


@pytest.mark.parametrize(
    ("model", "path"),
    [
        (CLAUDE, "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-v1:0",
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2F"
            "us.anthropic.claude-v1%3A0/converse",
        ),
        ("my model#1?", "/model/my%20model%231%3F/converse"),
    ],
)
def test_model_id_is_one_path_segment_encoded_as_botocore_does(model: str, path: str) -> None:
    assert model_path(model, "converse") == path
    # the HTTP client sends URLs as built (yarl `encoded=True`): what we sign goes out
    assert URL("https://host" + path, encoded=True).raw_path == path


# --------------------------------------------------------------------------- config


def test_config_defaults_and_secrets() -> None:
    config = BedrockConfig(
        region="eu-west-3",
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        session_token=TOKEN,
    )
    assert config.endpoint == "https://bedrock-runtime.eu-west-3.amazonaws.com"
    assert BedrockConfig(region=REGION, base_url="http://127.0.0.1:9/").endpoint == (
        "http://127.0.0.1:9"
    )
    for secret in (ACCESS_KEY, SECRET_KEY, TOKEN):
        assert secret not in repr(config)


@pytest.mark.parametrize(
    ("fields", "mentions"),
    [
        ({"region": "us-east-1", "access_key_id": "AKIA"}, "must be set together"),
        ({"region": "us-east-1", "session_token": "t"}, "needs access_key_id"),
        ({"region": "not a region"}, "region"),
        ({}, "region"),
    ],
)
def test_config_errors_name_the_provider(fields: dict[str, Any], mentions: str) -> None:
    with pytest.raises(ConfigError, match=mentions) as caught:
        parse_config({"auth": "none", "providers": {"aws": {"kind": "bedrock", **fields}}})
    assert str(caught.value).startswith("providers.aws")


def test_missing_botocore_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "botocore" or n.startswith("botocore.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ConfigError) as caught:
        parse_config({"auth": "none", "providers": {"aws": {"kind": "bedrock", "region": REGION}}})
    assert str(caught.value) == (
        "providers.aws: kind 'bedrock' needs botocore for AWS request signing: "
        "install it with pip install 'switchboard[bedrock]'"
    )


def test_gateway_without_botocore_starts_and_refuses_only_bedrock() -> None:
    """botocore is imported lazily: the app imports and serves other kinds without it."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["botocore"] = None  # as if the extra were not installed
        from gateway.app import create_app
        from gateway.config import ConfigError, parse_config
        create_app(parse_config({"auth": "none", "providers": {"s": {"kind": "simulated"}}}))
        assert not any(m.startswith("botocore.") for m in sys.modules), "botocore imported"
        try:
            parse_config({"auth": "none", "providers": {"aws": {"kind": "bedrock",
                                                                "region": "us-east-1"}}})
        except ConfigError as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'switchboard[bedrock]'" in result.stdout


def test_only_claude_models_can_reason_through_converse() -> None:
    provider = BedrockProvider("bedrock", CONFIG)
    assert provider.capabilities_for(CLAUDE).reasoning is True
    assert provider.capabilities_for("meta.llama3-3-70b-instruct-v1:0").reasoning is False
    request = chat_request(hello(reasoning_effort="low", temperature=0.5))
    llama = provider.capabilities_for("mistral.mistral-large-2407-v1:0")
    # named as dropped, and temperature kept: no thinking will happen
    assert provider.unsupported_params(request, llama) == ["reasoning_effort"]


# --------------------------------------------------------------------------- review fixes


def test_temperature_above_converses_range_is_sent_as_its_highest() -> None:
    """OpenAI takes 0-2, Converse 0-1: 1.5 would be a ValidationException (no fallback)."""
    assert upstream_body(hello(temperature=1.5))["inferenceConfig"] == {"temperature": 1.0}
    assert upstream_body(hello(temperature=0.4))["inferenceConfig"] == {"temperature": 0.4}


def test_no_claude_thinking_inside_a_tool_loop() -> None:
    """Claude wants the assistant turn that called the tools to open with its signed
    thinking block, which OpenAI messages cannot carry back: no thinking until the loop
    ends, and the effort is named as dropped."""
    loop = [
        {"role": "user", "content": "time?"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "now", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "noon"},
    ]
    tools = [{"type": "function", "function": {"name": "now"}}]
    fields = {"messages": loop, "tools": tools, "reasoning_effort": "low", "temperature": 0.3}
    body = upstream_body(fields)
    assert "additionalModelRequestFields" not in body
    assert body["inferenceConfig"] == {"temperature": 0.3}
    provider = BedrockProvider("bedrock", CONFIG)
    request = chat_request(fields)
    assert provider.unsupported_params(request, provider.capabilities) == ["reasoning_effort"]
    after = [*loop, {"role": "assistant", "content": "Noon."}, {"role": "user", "content": "ok"}]
    assert upstream_body({**fields, "messages": after})["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 1024}
    }


def test_frame_with_valid_checksums_but_an_unknown_header_type_is_garbage() -> None:
    """botocore checks checksums, not contents: a header of an unknown value type is a
    KeyError inside it, which must reach the gateway as a protocol error."""
    name = b":event-type"
    header = struct.pack(">B", len(name)) + name + struct.pack(">B", 99)
    prelude = struct.pack(">II", 12 + len(header) + 4, len(header))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + header
    broken = message + struct.pack(">I", zlib.crc32(message))
    start = event_frame("messageStart", {"role": "assistant"})
    with pytest.raises(UpstreamProtocolError, match="broken event-stream frame"):
        EventStreamDecoder("bedrock", CONVERSE_EVENTS).feed(start + broken)


def test_tool_history_without_tools_still_declares_the_tools_it_used() -> None:
    """Converse answers "The toolConfig field must be defined when using toolUse and
    toolResult content blocks"; OpenAI takes such a conversation (e.g. to summarise it)."""
    messages = [
        {"role": "user", "content": "time?"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "now", "arguments": "{}"}},
                {"id": "t2", "type": "function", "function": {"name": "now", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "noon"},
        {"role": "tool", "tool_call_id": "t2", "content": "noon"},
        {"role": "user", "content": "Summarise."},
    ]
    assert upstream_body({"messages": messages})["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "now", "inputSchema": {"json": {"type": "object"}}}}]
    }
    assert "toolConfig" not in upstream_body(hello())
