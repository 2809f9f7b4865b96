"""`POST /v1/completions` (legacy) end to end: the official `openai` SDK against the real
app on a loopback socket, in front of mock OpenAI-wire upstreams. Routing to the
deployments that speak the API, streaming with the closing usage chunk, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.gateway_server import GatewayServer, metadata_of
from tests.mock_upstream import (
    DEFAULT_TEXT,
    ErrorReply,
    JSONReply,
    MockUpstream,
    SSEReply,
    text_chunks,
    text_completion,
)
from tests.routing_setup import FAST_METRICS


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, MockUpstream]]:
    servers = {name: MockUpstream().start() for name in ("oai", "together", "groq", "azure")}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def up(upstreams: dict[str, MockUpstream]) -> dict[str, MockUpstream]:
    for server in upstreams.values():
        server.reset()
    return upstreams


def deployment(provider: str, model: str, price: float) -> dict[str, Any]:
    return {
        "provider": provider,
        "model": model,
        "input_per_mtok": price,
        "output_per_mtok": 2 * price,
    }


@pytest.fixture(scope="module")
def gateway(upstreams: dict[str, MockUpstream]) -> Iterator[GatewayServer]:
    config = {
        "auth": "none",
        "store": "memory://",
        "providers": {
            "oai": {"kind": "openai", "base_url": upstreams["oai"].url, "api_key": "sk-oai"},
            "together": {
                "kind": "openai",
                "preset": "together",
                "base_url": upstreams["together"].url,
                "api_key": "sk-together",
            },
            "groq": {"kind": "openai", "preset": "groq", "base_url": upstreams["groq"].url},
            "google": {"kind": "gemini", "base_url": "http://127.0.0.1:9/v1beta", "api_key": "k"},
            "azure": {
                "kind": "azure",
                "endpoint": f"http://127.0.0.1:{upstreams['azure'].port}",
                "api_key": "azure-secret",
            },
            "sim": {
                "kind": "simulated",
                "completion_tokens": 10,
                "text": "One two three. Four five six seven.",
            },
        },
        "models": {
            "instruct": {
                "deployments": [
                    deployment("together", "meta-llama/Llama-3-8b", 2.0),
                    deployment("oai", "gpt-3.5-turbo-instruct", 1.0),
                ]
            },
            "mixed": {
                "deployments": [
                    deployment("groq", "llama-3.1-8b-instant", 0.05),
                    deployment("together", "meta-llama/Llama-3-8b", 2.0),
                ]
            },
            "none": {
                "deployments": [
                    deployment("groq", "llama-3.1-8b-instant", 0.05),
                    deployment("google", "gemini-2.0-flash", 0.1),
                ]
            },
            "azure-instruct": {"deployments": [deployment("azure", "instruct-deploy", 1.5)]},
            "sim": {"deployments": [deployment("sim", "sim-instruct", 1.0)]},
        },
        "routing": {
            "strategy": "cost",
            "exploration": {"share": 0.0},
            "retries": {"attempts": 1},
            "metrics": FAST_METRICS,
        },
    }
    server = GatewayServer(config).start()
    yield server
    server.stop()


def test_a_completion_is_forwarded_and_answered_with_metadata_and_cost(
    gateway: GatewayServer, up: dict[str, MockUpstream]
) -> None:
    raw = gateway.sdk().completions.with_raw_response.create(
        model="instruct",
        prompt="Say this is a test",
        max_tokens=7,
        echo=False,
        extra_body={"vendor_flag": True},
    )
    answer = raw.parse()
    assert answer.choices[0].text == DEFAULT_TEXT
    sent = up["oai"].last_request
    assert (sent.path, sent.headers["authorization"]) == ("/v1/completions", "Bearer sk-oai")
    assert sent.json == {
        "model": "gpt-3.5-turbo-instruct",
        "prompt": "Say this is a test",
        "max_tokens": 7,
        "echo": False,
        "vendor_flag": True,
    }
    metadata = metadata_of(answer)
    assert (metadata["provider"], metadata["model_canonical"]) == ("oai", "instruct")
    usage = answer.usage
    assert usage is not None
    cost = round((usage.prompt_tokens * 1.0 + usage.completion_tokens * 2.0) / 1e6, 10)
    assert metadata["cost"]["usd"] == cost == (usage.model_extra or {})["cost"]
    assert raw.headers["x-switchboard-provider"] == "oai"
    assert raw.headers["x-switchboard-model"] == "gpt-3.5-turbo-instruct"


def test_a_stream_ends_with_usage_and_metadata(
    gateway: GatewayServer, up: dict[str, MockUpstream]
) -> None:
    chunks = list(gateway.sdk().completions.create(model="instruct", prompt="Once", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == DEFAULT_TEXT
    closing = chunks[-1]
    assert closing.choices == [] and closing.usage is not None
    metadata = metadata_of(closing)
    assert metadata["provider"] == "oai" and metadata["ttft_ms"] is not None
    assert metadata["cost"]["estimated"] is False
    assert (closing.usage.model_extra or {})["cost"] == metadata["cost"]["usd"]
    assert up["oai"].last_request.json["stream_options"] == {"include_usage": True}


def test_a_stream_without_an_upstream_usage_chunk_gets_the_gateways(
    gateway: GatewayServer, up: dict[str, MockUpstream]
) -> None:
    up["together"].enqueue(SSEReply(list(text_chunks(include_usage=False))))
    reply = httpx.post(
        f"{gateway.url}/v1/completions",
        json={"model": "mixed", "prompt": "Once", "stream": True},
        timeout=10,
    )
    events = [line[6:] for line in reply.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    closing = json.loads(events[-2])
    assert closing["object"] == "text_completion"
    assert closing["id"] == "cmpl-mock" and closing["choices"] == []
    assert closing["usage"]["completion_tokens"] == 4  # one a chunk with text
    assert closing["routing_metadata"]["cost"]["estimated"] is True
    assert "stream_options" not in up["together"].last_request.json  # together: not asked


def test_deployments_that_speak_no_legacy_completions_are_passed_over(
    gateway: GatewayServer, up: dict[str, MockUpstream]
) -> None:
    answer = gateway.sdk().completions.create(model="mixed", prompt="x")
    assert metadata_of(answer)["provider"] == "together"
    assert up["groq"].requests == []
    reply = httpx.post(f"{gateway.url}/v1/completions", json={"model": "none", "prompt": "x"})
    assert reply.status_code == 400
    assert reply.json()["error"] == {
        "message": "No deployment can serve this request: groq/none speaks no legacy "
        "completions API; google/none speaks no legacy completions API.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "no_candidate",
    }


def test_a_failure_before_the_first_byte_falls_back(
    gateway: GatewayServer, up: dict[str, MockUpstream]
) -> None:
    up["oai"].enqueue(ErrorReply(503, "overloaded", type="server_error"))
    chunks = list(gateway.sdk().completions.create(model="instruct", prompt="x", stream=True))
    metadata = metadata_of(chunks[-1])
    assert metadata["provider"] == "together"
    assert [a["error"] for a in metadata["attempts"]] == ["upstream_unavailable"]


def test_a_failure_mid_stream_ends_it_with_an_error_event(
    gateway: GatewayServer, up: dict[str, MockUpstream]
) -> None:
    up["oai"].enqueue(SSEReply(list(text_chunks()), cut_after=2))
    reply = httpx.post(
        f"{gateway.url}/v1/completions",
        json={"model": "instruct", "prompt": "x", "stream": True},
        timeout=10,
    )
    events = [line[6:] for line in reply.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["error"]["code"] == "upstream_stream_cut"
    assert [json.loads(e)["choices"][0]["text"] for e in events[:-2]] == ["Hello", " from"]


def test_azure_deployments_serve_legacy_completions(
    gateway: GatewayServer, up: dict[str, MockUpstream]
) -> None:
    up["azure"].enqueue(JSONReply(text_completion()))
    answer = gateway.sdk().completions.create(model="azure-instruct", prompt="x")
    assert metadata_of(answer)["provider"] == "azure"
    assert up["azure"].last_request.path == "/openai/deployments/instruct-deploy/completions"


def test_the_simulated_provider_writes_sentences_and_honours_max_tokens(
    gateway: GatewayServer,
) -> None:
    sdk = gateway.sdk()
    whole = sdk.completions.create(model="sim", prompt="x", max_tokens=50)
    # whole sentences, as many as fit in the provider's 10 tokens
    assert whole.choices[0].text == "One two three. Four five six seven. One two three."
    assert whole.choices[0].finish_reason == "stop"
    cut = sdk.completions.create(model="sim", prompt="x", max_tokens=2)
    assert (cut.choices[0].text, cut.choices[0].finish_reason) == ("One two", "length")
    default = sdk.completions.create(model="sim", prompt="x")  # max_tokens: 16 by default
    assert default.choices[0].finish_reason == "stop"
    several = sdk.completions.create(model="sim", prompt=["a", "b"], n=2, echo=True, max_tokens=3)
    assert [(c.index, c.text) for c in several.choices] == [
        (0, "aOne two three."),
        (1, "aOne two three."),
        (2, "bOne two three."),
        (3, "bOne two three."),
    ]
    streamed = list(sdk.completions.create(model="sim", prompt="x", max_tokens=5, stream=True))
    assert "".join(c.choices[0].text for c in streamed if c.choices) == "One two three. Four five"
    finishes = [c.choices[0].finish_reason for c in streamed if c.choices]
    assert finishes[-1] == "length" and set(finishes[:-1]) == {None}
    assert streamed[-1].usage is not None and streamed[-1].usage.completion_tokens == 5


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "instruct"}, "prompt", "missing_field"),
        ({"model": "instruct", "prompt": []}, "prompt", "invalid_value"),
        ({"model": "instruct", "prompt": ["a", 1]}, "prompt", "invalid_value"),
        ({"model": "instruct", "prompt": [[]]}, "prompt", "invalid_value"),
        ({"model": "instruct", "prompt": "x", "logprobs": 6}, "logprobs", "invalid_value"),
        ({"model": "instruct", "prompt": "x", "max_tokens": -1}, "max_tokens", "invalid_value"),
        ({"model": "instruct", "prompt": "x", "n": 3, "best_of": 2}, "best_of", "invalid_value"),
        ({"model": "instruct", "prompt": "x", "temperature": 3}, "temperature", "invalid_value"),
        ({"model": "instruct", "prompt": "x", "stop": ["a"] * 5}, "stop", "invalid_value"),
        ({"prompt": "x"}, "model", "missing_field"),
    ],
)
def test_bad_bodies_get_openai_errors_naming_the_param(
    gateway: GatewayServer, body: dict[str, Any], param: str, code: str
) -> None:
    reply = httpx.post(f"{gateway.url}/v1/completions", json=body)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert (error["param"], error["code"]) == (param, code)


def test_an_upstream_refusal_reaches_the_client_as_a_400(
    gateway: GatewayServer, up: dict[str, MockUpstream]
) -> None:
    up["oai"].enqueue(ErrorReply(400, "This model's maximum context length is 4097 tokens"))
    with pytest.raises(openai.BadRequestError) as refused:
        gateway.sdk().completions.create(model="instruct", prompt="x")
    assert refused.value.code == "upstream_rejected_request"
    assert up["together"].requests == []
