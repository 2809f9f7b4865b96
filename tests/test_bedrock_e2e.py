"""The gateway end to end in front of a Bedrock-speaking upstream.

The official `openai` SDK talks to the real gateway on a loopback socket; the gateway's
`kind: bedrock` provider talks to a mock upstream answering in the Converse wire format:
JSON for converse, binary event-stream frames for converse-stream
(tests/fixtures/bedrock). Each test checks what the SDK user sees and exactly what
reached Bedrock: path, query, headers, body, and that the SigV4 signature over them is
the one botocore computes with the test credentials.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import openai
import pydantic
import pytest

from tests.bedrock_helpers import exception_frame, expected_authorization, frames, load
from tests.gateway_server import GatewayServer, metadata_of
from tests.mock_upstream import JSONReply, MockUpstream, RawReply

REGION = "us-west-2"
ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLETOKEN"
CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
NOVA = "amazon.nova-pro-v1:0"
AWS_REQUEST_ID = "7a6b1c2d-3e4f-4a5b-8c9d-0e1f2a3b4c5d"
EVENT_STREAM = "application/vnd.amazon.eventstream"
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
            "properties": {"city": {"type": "string"}},
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
# what the HTTP client adds on its own (not signed)
_TRANSPORT_HEADERS = {"host", "content-length", "user-agent", "accept-encoding"}


@pytest.fixture(scope="module")
def gateway(shared_upstream: MockUpstream) -> Iterator[GatewayServer]:
    config = {
        "auth": "none",
        "store": "memory://",
        "providers": {
            "aws": {
                "kind": "bedrock",
                "region": REGION,
                "base_url": f"http://127.0.0.1:{shared_upstream.port}",
                "access_key_id": ACCESS_KEY,
                "secret_access_key": SECRET_KEY,
                "session_token": SESSION_TOKEN,
            }
        },
        "models": {
            "sonnet": {
                "deployments": [
                    {
                        "provider": "aws",
                        "model": CLAUDE,
                        "input_per_mtok": 3,
                        "output_per_mtok": 15,
                        "cached_input_per_mtok": 0.3,
                    }
                ]
            },
            "nova": {
                "deployments": [
                    {
                        "provider": "aws",
                        "model": NOVA,
                        "input_per_mtok": 0.8,
                        "output_per_mtok": 3.2,
                    }
                ]
            },
        },
    }
    server = GatewayServer(config).start()
    yield server
    server.stop()


@pytest.fixture
def client(gateway: GatewayServer, upstream: MockUpstream) -> Iterator[openai.OpenAI]:
    with gateway.sdk("sk-client-key") as sdk:
        yield sdk


def converse_reply(name: str) -> JSONReply:
    return JSONReply(load(name)["bedrock"], headers={"x-amzn-requestid": AWS_REQUEST_ID})


def stream_reply(name: str) -> RawReply:
    return RawReply(
        frames(load(name)["events"]),
        content_type=EVENT_STREAM,
        headers={"x-amzn-requestid": AWS_REQUEST_ID},
    )


def assert_sent(
    upstream: MockUpstream, model: str, body: dict[str, Any], *, stream: bool = False
) -> None:
    """Exactly one call reached Bedrock, it is this one, and it is validly signed."""
    assert len(upstream.requests) == 1
    sent = upstream.last_request
    operation = "converse-stream" if stream else "converse"
    assert (sent.method, sent.path, sent.query) == ("POST", f"/model/{model}/{operation}", {})
    # on the wire the model id is percent-encoded as botocore encodes it
    assert sent.raw_path == f"/model/{quote(model, safe='-._~')}/{operation}"
    headers = {k: v for k, v in sent.headers.items() if k not in _TRANSPORT_HEADERS}
    # the request id goes along as a header (unsigned: SigV4 allows that) and as the
    # invocation logs' request metadata
    request_id = headers.pop("x-request-id")
    assert sent.json == {**body, "requestMetadata": {"switchboard_request_id": request_id}}
    date = headers["x-amz-date"]
    assert headers == {
        "content-type": "application/json",
        "accept": EVENT_STREAM if stream else "application/json",
        "x-amz-date": date,
        "x-amz-security-token": SESSION_TOKEN,
        "authorization": (
            f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{date[:8]}/{REGION}/bedrock/aws4_request, "
            "SignedHeaders=accept;content-type;host;x-amz-date;x-amz-security-token, "
            f"Signature={headers['authorization'].rsplit('=', 1)[1]}"
        ),
    }
    assert len(date) == 16 and date.endswith("Z")
    # the signature the mock received is the one botocore computes from what it received
    port = upstream.port
    assert headers["authorization"] == expected_authorization(
        sent.method,
        f"http://127.0.0.1:{port}{sent.raw_path}",
        sent.headers,
        sent.body,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        token=SESSION_TOKEN,
        region=REGION,
    )


# --------------------------------------------------------------------------- answers


def test_text_completion(client: openai.OpenAI, upstream: MockUpstream) -> None:
    upstream.enqueue(converse_reply("response_text.json"))
    raw = client.chat.completions.with_raw_response.create(
        model="sonnet",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Oslo?"},
        ],
        max_tokens=100,
        temperature=0.5,
        stop=["###"],
        seed=42,
    )
    response = raw.parse()

    assert response.id == f"chatcmpl-{AWS_REQUEST_ID}"
    assert response.model == CLAUDE
    assert response.choices[0].message.content == "Oslo is 12 °C and clear."
    assert response.choices[0].finish_reason == "stop"
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (1225, 9)
    assert response.usage.prompt_tokens_details is not None
    assert response.usage.prompt_tokens_details.cached_tokens == 1000
    metadata = metadata_of(response)
    assert (metadata["provider"], metadata["provider_model_id"]) == ("aws", CLAUDE)
    cost = metadata["cost"]
    # uncached prompt tokens (cache writes among them) at the input price, reads cheaper
    assert cost["input_usd"] == pytest.approx((225 * 3 + 1000 * 0.3) / 1e6)
    assert cost["output_usd"] == pytest.approx(9 * 15 / 1e6)
    assert cost["estimated"] is False
    assert raw.headers["x-switchboard-provider"] == "aws"
    assert raw.headers["x-switchboard-dropped-params"] == "seed"
    assert SECRET_KEY not in raw.http_response.text

    assert_sent(
        upstream,
        CLAUDE,
        {
            "messages": [{"role": "user", "content": [{"text": "Weather in Oslo?"}]}],
            "system": [{"text": "Be brief."}],
            "inferenceConfig": {"maxTokens": 100, "temperature": 0.5, "stopSequences": ["###"]},
        },
    )


def test_streamed_text(client: openai.OpenAI, upstream: MockUpstream) -> None:
    upstream.enqueue(stream_reply("stream_text.json"))
    chunks = list(
        client.chat.completions.create(
            model="sonnet",
            messages=[{"role": "user", "content": "Hello"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from Bedrock ☁"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (62, 4)
    assert metadata_of(last)["cost"]["estimated"] is False
    assert {c.id for c in chunks} == {f"chatcmpl-{AWS_REQUEST_ID}"}

    assert_sent(
        upstream,
        CLAUDE,
        {"messages": [{"role": "user", "content": [{"text": "Hello"}]}]},
        stream=True,
    )


def test_streamed_parallel_tool_calls(client: openai.OpenAI, upstream: MockUpstream) -> None:
    upstream.enqueue(stream_reply("stream_tool_use.json"))
    with client.chat.completions.stream(
        model="sonnet",
        messages=[{"role": "user", "content": "Weather and time in Oslo?"}],
        tools=[WEATHER_TOOL, TIME_TOOL],
        parallel_tool_calls=True,
    ) as stream:
        final = stream.get_final_completion()

    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking."
    calls = choice.message.tool_calls or []
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("tooluse_oslo", "get_weather", {"city": "Oslo"}),
        ("tooluse_time", "get_time", {}),
    ]
    assert final.usage is not None
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (300, 90)

    assert_sent(
        upstream,
        CLAUDE,
        {
            "messages": [{"role": "user", "content": [{"text": "Weather and time in Oslo?"}]}],
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": "get_weather",
                            "description": "Current weather in a city",
                            "inputSchema": {"json": WEATHER_TOOL["function"]["parameters"]},
                        }
                    },
                    {
                        "toolSpec": {
                            "name": "get_time",
                            "inputSchema": {"json": TIME_TOOL["function"]["parameters"]},
                        }
                    },
                ]
            },
        },
        stream=True,
    )


def test_image_input(client: openai.OpenAI, upstream: MockUpstream) -> None:
    upstream.enqueue(converse_reply("response_text.json"))
    client.chat.completions.create(
        model="sonnet",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            }
        ],
    )
    assert_sent(
        upstream,
        CLAUDE,
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"text": "What is this?"},
                        {"image": {"format": "png", "source": {"bytes": PNG}}},
                    ],
                }
            ]
        },
    )


def test_image_url_converse_cannot_fetch_is_a_400_naming_the_part(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    response = gateway.post(
        {
            "model": "sonnet",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                    ],
                }
            ],
        }
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == (
        "invalid_request_error",
        "messages[0].content[1].image_url.url",
    )
    assert "cannot fetch a URL" in error["message"]
    assert upstream.requests == []


class Weather(pydantic.BaseModel):
    city: str
    temp_c: int


def test_json_schema_answer(client: openai.OpenAI, upstream: MockUpstream) -> None:
    answer = load("response_json_tool.json")["bedrock"]
    answer["output"]["message"]["content"][0]["toolUse"]["name"] = "Weather"  # the SDK's name
    upstream.enqueue(JSONReply(answer))
    completion = client.chat.completions.parse(
        model="nova",
        messages=[{"role": "user", "content": "Weather in Oslo as JSON."}],
        response_format=Weather,
    )

    message = completion.choices[0].message
    assert message.parsed == Weather(city="Oslo", temp_c=12)
    assert message.content == '{"city":"Oslo","temp_c":12}'
    assert message.tool_calls in (None, [])
    assert completion.choices[0].finish_reason == "stop"

    tool_config = upstream.last_request.json["toolConfig"]
    (tool,) = tool_config["tools"]
    assert tool["toolSpec"]["name"] == "Weather"
    assert tool["toolSpec"]["inputSchema"]["json"]["required"] == ["city", "temp_c"]
    assert_sent(
        upstream,
        NOVA,
        {
            "messages": [{"role": "user", "content": [{"text": "Weather in Oslo as JSON."}]}],
            "toolConfig": {
                "tools": [
                    {
                        "toolSpec": {
                            "name": "Weather",
                            "description": (
                                "Give your answer by calling this tool: its input is the answer."
                            ),
                            "inputSchema": tool["toolSpec"]["inputSchema"],
                            "strict": True,  # the SDK asks for a strict schema
                        }
                    }
                ],
                "toolChoice": {"tool": {"name": "Weather"}},
            },
        },
    )


def test_reasoning_effort_becomes_claude_thinking(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    upstream.enqueue(converse_reply("response_reasoning.json"))
    raw = client.chat.completions.with_raw_response.create(
        model="sonnet",
        messages=[{"role": "user", "content": "A haiku, please."}],
        reasoning_effort="low",
        max_completion_tokens=800,
    )
    response = raw.parse()
    message = response.choices[0].message
    assert message.content == "Autumn moonlight—"
    assert (message.model_extra or {})["reasoning_content"] == (
        "The user wants a haiku. Five, seven, five."
    )
    assert response.choices[0].finish_reason == "length"
    assert "x-switchboard-dropped-params" not in raw.headers
    assert_sent(
        upstream,
        CLAUDE,
        {
            "messages": [{"role": "user", "content": [{"text": "A haiku, please."}]}],
            "inferenceConfig": {"maxTokens": 1824},  # the client's 800 on top of the budget
            "additionalModelRequestFields": {
                "thinking": {"type": "enabled", "budget_tokens": 1024}
            },
        },
    )


# --------------------------------------------------------------------------- errors


def aws_error(status: int, error_type: str, message: str) -> RawReply:
    return RawReply(
        json.dumps({"message": message}).encode(),
        status=status,
        headers={"x-amzn-errortype": error_type, "x-amzn-requestid": AWS_REQUEST_ID},
    )


@pytest.mark.parametrize(
    ("reply", "client_status", "error_type", "code", "says"),
    [
        (
            aws_error(429, "ThrottlingException", "Too many requests, please wait."),
            429,
            "rate_limit_error",
            "upstream_rate_limited",
            "Too many requests, please wait.",
        ),
        (
            aws_error(503, "ServiceUnavailableException", "Bedrock is unable to process it."),
            502,
            "api_error",
            "upstream_unavailable",
            "Bedrock is unable to process it.",
        ),
        (
            aws_error(
                400,
                "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
                "Malformed input request: #: extraneous key [topK] is not permitted",
            ),
            400,
            "invalid_request_error",
            "upstream_rejected_request",
            "extraneous key [topK] is not permitted",
        ),
        (
            aws_error(403, "AccessDeniedException", "You don't have access to the model."),
            502,
            "api_error",
            "upstream_auth_failed",
            "refused the gateway's AWS credentials",
        ),
    ],
    ids=["rate_limited", "unavailable", "invalid_request", "auth"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_provider_errors(
    gateway: GatewayServer,
    upstream: MockUpstream,
    reply: RawReply,
    client_status: int,
    error_type: str,
    code: str,
    says: str,
    stream: bool,
) -> None:
    # every attempt gets the same answer, however many the dispatcher makes
    upstream.set_default(reply)
    response = gateway.post(
        {"model": "sonnet", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    )

    assert response.status_code == client_status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert (error["type"], error["code"]) == (error_type, code)
    assert says in error["message"]
    if client_status == 429:
        assert response.headers["retry-after"] == "1"  # AWS says nothing: the default
    assert SECRET_KEY not in response.text and SESSION_TOKEN not in response.text
    operation = "converse-stream" if stream else "converse"
    assert upstream.requests
    assert all(r.path == f"/model/{CLAUDE}/{operation}" for r in upstream.requests)


def test_exception_event_mid_stream_ends_with_an_error_event(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    events = load("stream_text.json")["events"][:3]
    body = frames(events) + exception_frame(
        "modelStreamErrorException",
        {"message": "The model stream failed.", "originalStatusCode": 500},
    )
    upstream.enqueue(RawReply(body, content_type=EVENT_STREAM))
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={"model": "sonnet", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        timeout=10,
    ) as response:
        assert response.status_code == 200
        data = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]

    *chunks, error_event, done = data
    assert done == "[DONE]"
    assert "".join(json.loads(c)["choices"][0]["delta"].get("content", "") for c in chunks) == (
        "Hello from"
    )
    error = json.loads(error_event)["error"]
    assert (error["type"], error["code"]) == ("api_error", "upstream_unavailable")
    assert "The model stream failed." in error["message"]
