"""Azure OpenAI end to end: the official `openai` SDK through the gateway to a mock Azure.

Azure speaks the OpenAI wire, so what is checked is Azure's addressing (deployment in
the path, `api-version` in the query, `api-key` instead of a bearer token), its extras
passing through, its streams' leading prompt-filter chunk, and its errors. Payloads are
in the shapes Azure documents (tests/fixtures/openai_compatible/README.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from gateway.chat_decoding import decode_chat_body
from gateway.config import ConfigError, parse_config
from providers.azure.adapter import AzureOpenAIProvider
from providers.base import ProviderCall
from providers.registry import build_provider
from tests.gateway_server import GatewayServer
from tests.mock_upstream import JSONReply, MockUpstream, SSEReply

FIXTURES = Path(__file__).parent / "fixtures" / "openai_compatible"
AZURE_KEY = "azure-key-0123456789abcdef"
DEPLOYMENT = "gpt4o-prod"
DEPLOYMENTS_PATH = f"/openai/deployments/{DEPLOYMENT}/chat/completions"
MESSAGES: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TIME_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}
FILTER_RESULTS = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}
# what Azure sends before any choice: no id, no model, only the prompt's filter results
PROMPT_FILTER_CHUNK = {
    "choices": [],
    "created": 0,
    "id": "",
    "model": "",
    "object": "",
    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": FILTER_RESULTS}],
}


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def fixture_events(name: str) -> list[str | bytes | dict[str, Any]]:
    """An .sse fixture as the events it holds, each sent verbatim."""
    text = (FIXTURES / name).read_text()
    return [event + "\n\n" for event in text.split("\n\n") if event]


def azure_config(endpoint: str, **provider: Any) -> dict[str, Any]:
    return {
        "auth": "none",
        "providers": {
            "azure": {"kind": "azure", "endpoint": endpoint, "api_key": AZURE_KEY, **provider}
        },
        "models": {
            "gpt-4o": {
                "deployments": [
                    {
                        "provider": "azure",
                        "model": DEPLOYMENT,
                        "input_per_mtok": 2.5,
                        "output_per_mtok": 10,
                    }
                ]
            }
        },
    }


@pytest.fixture(scope="module")
def gateway(shared_upstream: MockUpstream) -> Iterator[GatewayServer]:
    endpoint = f"http://127.0.0.1:{shared_upstream.port}/"  # a trailing slash is fine
    server = GatewayServer(azure_config(endpoint)).start()
    yield server
    server.stop()


@pytest.fixture
def client(gateway: GatewayServer) -> Iterator[openai.OpenAI]:
    with gateway.sdk("sk-client") as sdk:
        yield sdk


def assert_azure_request(upstream: MockUpstream, body: dict[str, Any]) -> None:
    """The one request Azure got: its address, its credentials, and this body."""
    [sent] = upstream.requests
    assert (sent.method, sent.path) == ("POST", DEPLOYMENTS_PATH)
    assert sent.query == {"api-version": "2024-10-21"}
    assert sent.headers["api-key"] == AZURE_KEY
    assert "authorization" not in sent.headers
    assert sent.headers["content-type"] == "application/json"
    # `model` stays in the body (Azure ignores it, as with the openai SDK's own client)
    assert sent.json == {"model": DEPLOYMENT, **body}


def azure_chunk(**delta_and_finish: Any) -> dict[str, Any]:
    finish = delta_and_finish.pop("finish_reason", None)
    return {
        "choices": [
            {
                "content_filter_results": {},
                "delta": delta_and_finish,
                "finish_reason": finish,
                "index": 0,
                "logprobs": None,
            }
        ],
        "created": 1733054400,
        "id": "chatcmpl-azure-tools",
        "model": "gpt-4o-2024-08-06",
        "object": "chat.completion.chunk",
        "system_fingerprint": "fp_04751d0b65",
        "usage": None,
    }


# --------------------------------------------------------------------------- answers


def test_plain_completion(client: openai.OpenAI, upstream: MockUpstream) -> None:
    upstream.enqueue(JSONReply(fixture_json("azure_chat_completion.json")))
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    completion = raw.parse()

    assert completion.id == "chatcmpl-AZ1x3fWqU8JcY7oZ0m2rTnYQH3kLp"
    assert completion.choices[0].message.content == "Paris is the capital of France."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (14, 8)
    extra = completion.model_extra or {}
    # Azure's own annotations reach the client untouched
    assert (
        extra["prompt_filter_results"]
        == fixture_json("azure_chat_completion.json")["prompt_filter_results"]
    )
    assert extra["routing_metadata"]["provider"] == "azure"
    assert extra["routing_metadata"]["provider_model_id"] == DEPLOYMENT
    assert extra["routing_metadata"]["cost"]["estimated"] is False
    assert raw.headers["x-switchboard-provider"] == "azure"
    assert_azure_request(upstream, {"messages": MESSAGES})


def test_stream_opening_with_prompt_filter_results(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    upstream.enqueue(SSEReply(fixture_events("azure_stream.sse"), send_done=False))
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))

    # the choice-less opening chunk is not passed on: every chunk is the stream's own
    assert {c.id for c in chunks} == {"chatcmpl-AZ1x4StReAmEdAzUrE0000000000"}
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Paris is the capital."
    *body, last = chunks
    assert [c.choices[0].finish_reason for c in body][-1] == "stop"
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (14, 4)
    metadata = (last.model_extra or {})["routing_metadata"]
    assert metadata["cost"]["estimated"] is False
    assert metadata["ttft_ms"] is not None and metadata["ttft_ms"] > 0
    assert_azure_request(
        upstream,
        {"messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}},
    )


def test_streamed_parallel_tool_calls(client: openai.OpenAI, upstream: MockUpstream) -> None:
    weather = json.dumps({"city": "Oslo"})
    clock = json.dumps({"tz": "Europe/Oslo"})
    events: list[str | bytes | dict[str, Any]] = [
        PROMPT_FILTER_CHUNK,
        azure_chunk(role="assistant", content=None),
    ]
    for index, (call_id, name, arguments) in enumerate(
        [("call_w", "get_weather", weather), ("call_t", "get_time", clock)]
    ):
        head = {"index": index, "id": call_id, "type": "function"}
        events.append(
            azure_chunk(tool_calls=[{**head, "function": {"name": name, "arguments": ""}}])
        )
        for start in range(0, len(arguments), 4):
            piece = {"index": index, "function": {"arguments": arguments[start : start + 4]}}
            events.append(azure_chunk(tool_calls=[piece]))
    events.append(azure_chunk(finish_reason="tool_calls"))
    usage = {"prompt_tokens": 40, "completion_tokens": 20, "total_tokens": 60}
    events.append({**azure_chunk(), "choices": [], "usage": usage})
    upstream.enqueue(SSEReply(events))

    with client.chat.completions.stream(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Weather and time in Oslo?"}],
        tools=[WEATHER_TOOL, TIME_TOOL],
        parallel_tool_calls=True,
    ) as stream:
        final = stream.get_final_completion()

    assert final.id == "chatcmpl-azure-tools"
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls or []]
    assert calls == [("call_w", "get_weather", weather), ("call_t", "get_time", clock)]
    assert final.usage is not None and final.usage.prompt_tokens == 40
    sent = upstream.last_request.json
    assert sent["tools"] == [WEATHER_TOOL, TIME_TOOL]
    assert sent["parallel_tool_calls"] is True


def test_image_input_and_json_schema_answer_pass_through(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    answer = fixture_json("azure_chat_completion.json")
    answer["choices"][0]["message"]["content"] = '{"city": "Paris"}'
    upstream.enqueue(JSONReply(answer))
    messages: list[Any] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Which city is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        }
    ]
    response_format: Any = {
        "type": "json_schema",
        "json_schema": {
            "name": "city",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
    completion = client.chat.completions.create(
        model="gpt-4o", messages=messages, response_format=response_format
    )
    assert json.loads(completion.choices[0].message.content or "") == {"city": "Paris"}
    assert_azure_request(upstream, {"messages": messages, "response_format": response_format})


def test_azure_extensions_reach_azure_and_openai_ones_do_not(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    upstream.enqueue(JSONReply(fixture_json("azure_chat_completion.json")))
    client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        extra_body={
            "extensions": {
                "azure": {"data_sources": [{"type": "azure_search"}]},
                "openai": {"store": True},
            }
        },
    )
    assert_azure_request(
        upstream, {"messages": MESSAGES, "data_sources": [{"type": "azure_search"}]}
    )


# --------------------------------------------------------------------------- errors


def test_content_filter_is_the_clients_rejected_request(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    upstream.enqueue(JSONReply(fixture_json("azure_content_filter_error.json"), status=400))
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    error = raised.value
    assert error.status_code == 400
    assert isinstance(error.body, dict)
    assert error.body["type"] == "invalid_request_error"
    assert error.body["code"] == "content_filter"
    assert error.body["param"] == "prompt"
    assert "content management policy" in error.body["message"]
    assert AZURE_KEY not in error.response.text
    assert len(upstream.requests) == 1  # a filtered prompt is not retried elsewhere


def test_rate_limit_is_a_429_with_retry_after(
    client: openai.OpenAI, upstream: MockUpstream
) -> None:
    upstream.enqueue(
        JSONReply(
            fixture_json("azure_rate_limit_error.json"),
            status=429,
            headers={"retry-after": "6", "retry-after-ms": "6000"},
        )
    )
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    error = raised.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "6"
    assert isinstance(error.body, dict)
    assert error.body["type"] == "rate_limit_error"
    assert "exceeded token rate limit" in error.body["message"]


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (
            401,
            {
                "error": {
                    "code": "401",
                    "message": "Access denied due to invalid subscription key or wrong API "
                    "endpoint. Make sure to provide a valid key for an active subscription "
                    "and use a correct regional API endpoint for your resource.",
                }
            },
            "upstream_auth_failed",
        ),
        (
            503,
            {
                "error": {
                    "code": "ServiceUnavailable",
                    "message": "The service is temporarily unavailable.",
                }
            },
            "upstream_unavailable",
        ),
    ],
    ids=["auth", "unavailable"],
)
def test_provider_side_failures_are_502(
    client: openai.OpenAI, upstream: MockUpstream, status: int, body: Any, code: str
) -> None:
    upstream.enqueue(JSONReply(body, status=status))
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert raised.value.status_code == 502
    assert isinstance(raised.value.body, dict)
    assert raised.value.body["code"] == code
    assert AZURE_KEY not in raised.value.response.text


# --------------------------------------------------------------------------- config


def test_api_version_and_deployment_are_addressed_from_config() -> None:
    config = parse_config(
        azure_config("https://myres.openai.azure.com", api_version="2025-04-01-preview")
    ).providers["azure"]
    provider = build_provider("azure", config)
    assert isinstance(provider, AzureOpenAIProvider)
    request, _ = decode_chat_body(json.dumps({"model": "gpt-4o", "messages": MESSAGES}).encode())
    call = ProviderCall(request=request, model="team a/gpt-4o")
    assert provider.url_for(call) == (
        "https://myres.openai.azure.com/openai/deployments/team%20a%2Fgpt-4o/chat/completions"
        "?api-version=2025-04-01-preview"
    )
    assert AZURE_KEY not in repr(config)


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        ({"kind": "azure"}, "providers.a: Object missing required field `endpoint`"),
        (
            {"kind": "azure", "endpoint": "myres.openai.azure.com"},
            "providers.a.endpoint: Expected `str` matching regex",
        ),
        (
            {"kind": "azure", "endpoint": "https://x", "api_version": "latest"},
            "providers.a.api_version: Expected `str` matching regex",
        ),
    ],
)
def test_config_errors_name_the_path(provider: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config({"auth": "none", "providers": {"a": provider}})
    assert str(raised.value).startswith(expected)
