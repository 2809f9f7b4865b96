"""The gateway end to end in front of a Gemini API: the official `openai` SDK as the
client, the real app on a loopback socket, and a mock upstream speaking Gemini's wire
format (payloads from tests/fixtures/gemini). Each test checks what the SDK user sees and
exactly what reached Google's endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pydantic
import pytest

from tests.gateway_server import GatewayServer
from tests.mock_upstream import JSONReply, MockUpstream, RawReply, Reply, SSEReply

FIXTURES = Path(__file__).parent / "fixtures" / "gemini"
API_KEY = "AIzaSy-upstream-secret"
UPSTREAM_MODEL = "gemini-2.5-flash"
HELLO: list[Any] = [{"role": "user", "content": "What is the capital of Italy?"}]
HELLO_CONTENTS = [{"role": "user", "parts": [{"text": "What is the capital of Italy?"}]}]
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
WEATHER_DECLARATION = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["city"],
    },
}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def sse(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode()


@pytest.fixture(scope="module")
def gateway(shared_upstream: MockUpstream) -> Iterator[GatewayServer]:
    config = {
        "auth": "none",
        "store": "memory://",
        "providers": {
            "google": {
                "kind": "gemini",
                "base_url": f"http://127.0.0.1:{shared_upstream.port}/v1beta",
                "api_key": API_KEY,
                "timeout": 5,
            }
        },
        "models": {
            "flash": {
                "deployments": [
                    {
                        "provider": "google",
                        "model": UPSTREAM_MODEL,
                        "input_per_mtok": 0.3,
                        "output_per_mtok": 2.5,
                    }
                ]
            }
        },
    }
    server = GatewayServer(config).start()
    yield server
    server.stop()


@pytest.fixture
def client(gateway: GatewayServer, upstream: MockUpstream) -> Iterator[openai.OpenAI]:
    with gateway.sdk("sk-client") as sdk:
        yield sdk


def assert_upstream(upstream: MockUpstream, method: str, body: dict[str, Any]) -> None:
    """The one request Google's endpoint received: path, query, key header and body."""
    assert len(upstream.requests) == 1
    request = upstream.last_request
    assert request.method == "POST"
    assert request.path == f"/v1beta/models/{UPSTREAM_MODEL}:{method}"
    assert request.query == ({"alt": "sse"} if method == "streamGenerateContent" else {})
    assert request.headers["x-goog-api-key"] == API_KEY
    assert request.headers["content-type"] == "application/json"
    assert "authorization" not in request.headers
    assert request.json == body


# --------------------------------------------------------------------------- answers


def test_plain_text(client: openai.OpenAI, upstream: MockUpstream) -> None:
    upstream.enqueue(JSONReply(fixture("response_text.json")["gemini"]))
    raw = client.chat.completions.with_raw_response.create(
        model="flash", messages=HELLO, temperature=0.2, max_tokens=50, user="u-1"
    )
    completion = raw.parse()
    assert raw.headers["x-switchboard-provider"] == "google"
    assert raw.headers["x-switchboard-dropped-params"] == "user"
    assert completion.id == "mO5pZ6ysI9TqxN8PqIGX0Qs"
    assert completion.model == "gemini-2.5-flash"
    choice = completion.choices[0]
    assert (choice.message.content, choice.finish_reason) == (
        "The capital of Italy is Rome.",
        "stop",
    )
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1200, 8, 1208)
    assert usage.prompt_tokens_details.cached_tokens == 1024
    metadata = (completion.model_extra or {})["routing_metadata"]
    assert metadata["provider_model_id"] == UPSTREAM_MODEL
    assert metadata["cost"]["estimated"] is False
    assert_upstream(
        upstream,
        "generateContent",
        {
            "contents": HELLO_CONTENTS,
            "generationConfig": {"maxOutputTokens": 50, "temperature": 0.2},
        },
    )


def test_streamed_text(client: openai.OpenAI, upstream: MockUpstream) -> None:
    upstream.enqueue(SSEReply(chunks=[sse("stream_text.sse")], send_done=False))
    stream = client.chat.completions.create(
        model="flash", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The capital of Italy is Rome."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert {c.id for c in chunks} == {"k9VpZ8C4NLbqxN8P4pe5mAg"}
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (8, 7)
    assert "routing_metadata" in (last.model_extra or {})
    assert_upstream(upstream, "streamGenerateContent", {"contents": HELLO_CONTENTS})


def test_streamed_parallel_tool_calls_round_trip(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    upstream.enqueue(SSEReply(chunks=[sse("stream_tools.sse")], send_done=False))
    question: list[Any] = [{"role": "user", "content": "Weather in Paris and Rome?"}]
    with client.chat.completions.stream(
        model="flash", messages=question, tools=[WEATHER_TOOL]
    ) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert (choice.finish_reason, choice.message.content) == ("tool_calls", "Checking.")
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Rome", "unit": "celsius"}),
    ]
    assert len({c.id for c in calls}) == 2 and all(c.id.startswith("call_") for c in calls)
    assert_upstream(
        upstream,
        "streamGenerateContent",
        {
            "contents": [{"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]}],
            "tools": [{"functionDeclarations": [WEATHER_DECLARATION]}],
        },
    )

    # the next turn: the SDK's own message object goes back with the tool results, and
    # with it the thought signature Gemini needs to see again
    upstream.reset()
    upstream.enqueue(JSONReply(fixture("response_text.json")["gemini"]))
    client.chat.completions.create(
        model="flash",
        messages=[
            *question,
            # the SDK echoes its own message object back, as its docs show; its type
            # is not one of the request TypedDicts
            choice.message,  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": calls[0].id, "content": '{"temp": 18}'},
            {"role": "tool", "tool_call_id": calls[1].id, "content": "21 degrees"},
        ],
        tools=[WEATHER_TOOL],
    )
    assert upstream.last_request.json["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {"text": "Checking."},
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "CiQBVKhc7oE4aQ==",
                },
                {
                    "functionCall": {
                        "name": "get_weather",
                        "args": {"city": "Rome", "unit": "celsius"},
                    }
                },
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 18}}},
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"content": "21 degrees"},
                    }
                },
            ],
        },
    ]


def test_image_input(client: openai.OpenAI, upstream: MockUpstream) -> None:
    upstream.enqueue(JSONReply(fixture("response_text.json")["gemini"]))
    client.chat.completions.create(
        model="flash",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            }
        ],
    )
    assert_upstream(
        upstream,
        "generateContent",
        {
            "contents": [
                {
                    "role": "user",
                    "parts": [
                        {"text": "What is in these?"},
                        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                        {
                            "fileData": {
                                "mimeType": "image/jpeg",
                                "fileUri": "https://example.com/cat.jpg",
                            }
                        },
                    ],
                }
            ]
        },
    )


class Person(pydantic.BaseModel):
    name: str
    age: int
    jobs: list[str]


def test_json_schema_answer(client: openai.OpenAI, upstream: MockUpstream) -> None:
    upstream.enqueue(JSONReply(fixture("response_json.json")["gemini"]))
    completion = client.chat.completions.parse(
        model="flash",
        messages=[{"role": "user", "content": "Extract: Ada Lovelace, 36, mathematician."}],
        response_format=Person,
        reasoning_effort="low",
    )
    assert completion.choices[0].message.parsed == Person(
        name="Ada Lovelace", age=36, jobs=["mathematician"]
    )
    usage = completion.usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 100
    assert_upstream(
        upstream,
        "generateContent",
        {
            "contents": [
                {"role": "user", "parts": [{"text": "Extract: Ada Lovelace, 36, mathematician."}]}
            ],
            "generationConfig": {
                "responseMimeType": "application/json",
                # the SDK's strict schema, without what Gemini refuses (additionalProperties)
                "responseSchema": {
                    "type": "object",
                    "title": "Person",
                    "properties": {
                        "name": {"type": "string", "title": "Name"},
                        "age": {"type": "integer", "title": "Age"},
                        "jobs": {"type": "array", "title": "Jobs", "items": {"type": "string"}},
                    },
                    "required": ["name", "age", "jobs"],
                },
                "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True},
            },
        },
    )


# --------------------------------------------------------------------------- errors


def google_error(status: int, state: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": state, **extra}}


ERRORS = [
    pytest.param(
        JSONReply(
            google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota.",
                details=[{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}],
            ),
            status=429,
        ),
        429,
        "rate_limit_error",
        "upstream_rate_limited",
        "You exceeded your current quota.",
        id="rate-limited",
    ),
    pytest.param(
        JSONReply(
            google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
            status=503,
        ),
        502,
        "api_error",
        "upstream_unavailable",
        "The model is overloaded. Please try again later.",
        id="overloaded",
    ),
    pytest.param(
        JSONReply(
            google_error(
                400,
                "INVALID_ARGUMENT",
                'Invalid JSON payload received. Unknown name "foo": Cannot find field.',
            ),
            status=400,
        ),
        400,
        "invalid_request_error",
        "upstream_rejected_request",
        'Invalid JSON payload received. Unknown name "foo": Cannot find field.',
        id="invalid-request",
    ),
    pytest.param(
        JSONReply(
            google_error(403, "PERMISSION_DENIED", "The caller does not have permission"),
            status=403,
        ),
        502,
        "api_error",
        "upstream_auth_failed",
        "credentials",
        id="auth",
    ),
    pytest.param(
        JSONReply(
            google_error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                    }
                ],
            ),
            status=400,
        ),
        502,
        "api_error",
        "upstream_auth_failed",
        "credentials",
        id="bad-key-is-auth",
    ),
]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(("reply", "status", "type", "code", "says"), ERRORS)
def test_provider_errors(
    client: openai.OpenAI,
    upstream: MockUpstream,
    reply: Reply,
    status: int,
    type: str,
    code: str,
    says: str,
    stream: bool,
) -> None:
    upstream.set_default(reply)  # whatever retries the router makes get the same answer
    with pytest.raises(openai.APIStatusError) as caught:
        answer = client.chat.completions.create(model="flash", messages=HELLO, stream=stream)
        list(answer)  # type: ignore[arg-type]  # a union of answer and stream: iterate either
    error = caught.value
    assert error.status_code == status
    body = error.body
    assert isinstance(body, dict)
    assert (body["type"], body["code"]) == (type, code)
    assert says in body["message"]
    assert API_KEY not in error.response.text + str(error.response.headers)
    if status == 429:
        assert error.response.headers["retry-after"] == "7"


def test_garbage_from_upstream_is_a_bad_gateway(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    upstream.enqueue(RawReply(b'{"candidates": "nope"}'))
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="flash", messages=HELLO)
    assert caught.value.status_code == 502
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "upstream_bad_response"
