"""`POST /v1/embeddings` end to end: the official `openai` SDK against the real app on a
loopback socket, in front of mock upstreams that speak OpenAI's and Gemini's embeddings
wire formats. Routing (cost, fallbacks, refusals), usage and cost, the SDK's base64
default, and errors in OpenAI's envelope."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.gateway_server import GatewayServer, metadata_of
from tests.mock_upstream import (
    ComputedReply,
    ErrorReply,
    JSONReply,
    MockUpstream,
    RecordedRequest,
    embedding_vector,
)
from tests.routing_setup import FAST_METRICS

CHEAP, DEAR, GEMINI_PRICE = 0.02, 0.05, 0.15


def floats(encoded: str) -> list[float]:
    data = base64.b64decode(encoded)
    return list(struct.unpack(f"<{len(data) // 4}f", data))


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, MockUpstream]]:
    names = ("cheap", "dear", "google", "claude", "aws")
    servers = {name: MockUpstream().start() for name in names}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def up(upstreams: dict[str, MockUpstream]) -> dict[str, MockUpstream]:
    for server in upstreams.values():
        server.reset()
    return upstreams


def deployment(provider: str, model: str, price: float) -> dict[str, Any]:
    return {"provider": provider, "model": model, "input_per_mtok": price, "output_per_mtok": 0}


@pytest.fixture(scope="module")
def gateway(upstreams: dict[str, MockUpstream]) -> Iterator[GatewayServer]:
    def openai_at(name: str) -> dict[str, Any]:
        return {"kind": "openai", "base_url": upstreams[name].url, "api_key": f"sk-{name}"}

    config = {
        "auth": "none",
        "store": "memory://",
        "providers": {
            "cheap": openai_at("cheap"),
            "dear": openai_at("dear"),
            "google": {
                "kind": "gemini",
                "base_url": f"http://127.0.0.1:{upstreams['google'].port}/v1beta",
                "api_key": "AIzaSy-secret",
            },
            "claude": {
                "kind": "anthropic",
                "base_url": f"http://127.0.0.1:{upstreams['claude'].port}",
                "api_key": "sk-ant-secret",
            },
            "sim": {"kind": "simulated", "embedding_dimensions": 16},
            "aws": {
                "kind": "bedrock",
                "base_url": f"http://127.0.0.1:{upstreams['aws'].port}",
                "region": "us-east-1",
                "access_key_id": "AKIDEXAMPLE",
                "secret_access_key": "bedrock-secret-key",
            },
        },
        "models": {
            "embed-small": {
                "deployments": [
                    deployment("dear", "text-embedding-3-small", DEAR),
                    deployment("cheap", "text-embedding-3-small", CHEAP),
                ]
            },
            "embed-mixed": {
                "deployments": [
                    deployment("google", "gemini-embedding-001", 0.01),
                    deployment("dear", "text-embedding-3-small", DEAR),
                ]
            },
            "embed-gemini": {
                "deployments": [deployment("google", "gemini-embedding-001", GEMINI_PRICE)]
            },
            "claude": {"deployments": [deployment("claude", "claude-sonnet-4-20250514", 3.0)]},
            "sim-embed": {"deployments": [deployment("sim", "sim-embed-1", 0.01)]},
            "titan": {"deployments": [deployment("aws", "amazon.titan-embed-text-v2:0", 0.02)]},
            "cohere": {"deployments": [deployment("aws", "cohere.embed-english-v3", 0.1)]},
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


def test_the_sdk_default_base64_is_forwarded_and_decoded(
    gateway: GatewayServer, up: dict[str, MockUpstream]
) -> None:
    raw = gateway.sdk().embeddings.with_raw_response.create(
        model="embed-small", input=["one", "two"], dimensions=3
    )
    answer = raw.parse()
    assert [d.embedding for d in answer.data] == [embedding_vector(0, 3), embedding_vector(1, 3)]
    sent = up["cheap"].last_request
    assert sent.path == "/v1/embeddings"
    assert sent.headers["authorization"] == "Bearer sk-cheap"
    assert sent.json == {
        "model": "text-embedding-3-small",
        "input": ["one", "two"],
        "dimensions": 3,
        "encoding_format": "base64",  # the SDK's own default
    }
    assert up["dear"].requests == []  # cost: the cheaper deployment first
    assert answer.usage.prompt_tokens == answer.usage.total_tokens == 5
    metadata = metadata_of(answer)
    assert metadata["provider"] == "cheap"
    assert metadata["model_canonical"] == "embed-small"
    assert metadata["cost"] == {
        "usd": round(5 * CHEAP / 1e6, 10),
        "input_usd": round(5 * CHEAP / 1e6, 10),
        "output_usd": 0.0,
        "estimated": False,
    }
    assert (answer.usage.model_extra or {})["cost"] == round(
        5 * CHEAP / 1e6, 10
    )  # OpenRouter's field
    headers = raw.http_response.headers
    assert headers["x-switchboard-provider"] == "cheap"
    assert headers["x-switchboard-model"] == "text-embedding-3-small"
    assert float(headers["x-switchboard-cost-usd"]) == pytest.approx(round(5 * CHEAP / 1e6, 10))
    assert headers["x-request-id"] == metadata["request_id"]


def test_floats_asked_for_are_floats(gateway: GatewayServer, up: dict[str, MockUpstream]) -> None:
    answer = gateway.sdk().embeddings.create(
        model="embed-small", input="one", encoding_format="float"
    )
    assert answer.data[0].embedding == embedding_vector(0)
    assert up["cheap"].last_request.json["encoding_format"] == "float"


def test_a_failing_deployment_falls_back_and_is_named(
    gateway: GatewayServer, up: dict[str, MockUpstream]
) -> None:
    up["cheap"].enqueue(ErrorReply(503, "overloaded", type="server_error"))
    answer = gateway.sdk().embeddings.create(model="embed-small", input="one")
    metadata = metadata_of(answer)
    assert metadata["provider"] == "dear"
    assert [(a["provider"], a["status"], a["error"]) for a in metadata["attempts"]] == [
        ("cheap", 503, "upstream_unavailable")
    ]
    assert metadata["cost"]["usd"] == round(5 * DEAR / 1e6, 10)


def test_an_upstream_refusal_of_the_request_is_the_clients_400(
    gateway: GatewayServer, up: dict[str, MockUpstream]
) -> None:
    up["cheap"].enqueue(
        ErrorReply(400, "This model does not support dimensions", param="dimensions")
    )
    with pytest.raises(openai.BadRequestError) as refused:
        gateway.sdk().embeddings.create(model="embed-small", input="one", dimensions=7)
    assert refused.value.body == {
        "message": "cheap: This model does not support dimensions",
        "type": "invalid_request_error",
        "param": "dimensions",
        "code": "upstream_rejected_request",
    }
    assert up["dear"].requests == []  # another deployment would refuse it too


def test_gemini_answers_in_openai_shape_with_an_estimated_usage(
    gateway: GatewayServer, up: dict[str, MockUpstream]
) -> None:
    up["google"].enqueue(JSONReply({"embeddings": [{"values": [0.5, -0.25]}, {"values": [1, 0]}]}))
    raw = gateway.sdk().embeddings.with_raw_response.create(
        model="embed-gemini", input=["sixteen chars!!!", "and eight"], user="u1"
    )
    answer = raw.parse()
    assert [d.embedding for d in answer.data] == [[0.5, -0.25], [1.0, 0.0]]
    sent = up["google"].last_request
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.headers["x-goog-api-key"] == "AIzaSy-secret"
    assert [r["content"]["parts"][0]["text"] for r in sent.json["requests"]] == [
        "sixteen chars!!!",
        "and eight",
    ]
    assert answer.usage.prompt_tokens == 4 + 3  # about four characters a token
    metadata = metadata_of(answer)
    assert metadata["cost"]["estimated"] is True
    assert metadata["cost"]["usd"] == pytest.approx(7 * GEMINI_PRICE / 1e6)
    assert raw.http_response.headers["x-switchboard-dropped-params"] == "user"


def test_token_arrays_pass_over_a_deployment_that_takes_only_text(
    gateway: GatewayServer, up: dict[str, MockUpstream]
) -> None:
    answer = gateway.sdk().embeddings.create(model="embed-mixed", input=[[1, 2, 3]])
    assert metadata_of(answer)["provider"] == "dear"
    assert up["dear"].last_request.json["input"] == [[1, 2, 3]]
    assert up["google"].requests == []
    # text goes to the cheaper Gemini deployment
    up["google"].enqueue(JSONReply({"embedding": {"values": [0.5]}}))
    answer = gateway.sdk().embeddings.create(model="embed-mixed", input="text")
    assert metadata_of(answer)["provider"] == "google"


@pytest.mark.parametrize(
    ("model", "body", "reason"),
    [
        ("embed-gemini", {"input": [[1, 2]]}, "google/embed-gemini takes text, not token arrays"),
        ("claude", {"input": "hi"}, "claude/claude has no embeddings API"),
    ],
)
def test_no_candidate_names_each_deployment_and_why(
    gateway: GatewayServer, model: str, body: dict[str, Any], reason: str
) -> None:
    reply = httpx.post(f"{gateway.url}/v1/embeddings", json={"model": model, **body})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert (error["code"], error["param"]) == ("no_candidate", "model")
    assert error["message"] == f"No deployment can serve this request: {reason}."


@pytest.mark.parametrize(
    ("body", "status", "param", "code"),
    [
        ({"model": "embed-small"}, 400, "input", "missing_field"),
        ({"model": "embed-small", "input": ""}, 400, "input", "invalid_value"),
        ({"model": "embed-small", "input": []}, 400, "input", "invalid_value"),
        ({"model": "embed-small", "input": ["a", 1]}, 400, "input", "invalid_value"),
        ({"model": "embed-small", "input": [[1], []]}, 400, "input", "invalid_value"),
        ({"model": "embed-small", "input": [-1]}, 400, "input", "invalid_value"),
        ({"model": "embed-small", "input": ["a"] * 2049}, 400, "input", "invalid_value"),
        ({"model": "embed-small", "input": {"a": 1}}, 400, "input", "invalid_value"),
        (
            {"model": "embed-small", "input": "a", "dimensions": 0},
            400,
            "dimensions",
            "invalid_value",
        ),
        (
            {"model": "embed-small", "input": "a", "encoding_format": "int8"},
            400,
            "encoding_format",
            "invalid_value",
        ),
        ({"input": "a"}, 400, "model", "missing_field"),
        ({"model": "nope", "input": "a"}, 404, "model", "model_not_found"),
        (
            {"model": "embed-small", "input": "a", "routing": {"strategy": "x"}},
            400,
            "routing.strategy",
            "invalid_value",
        ),
    ],
)
def test_bad_bodies_get_openai_errors_naming_the_param(
    gateway: GatewayServer, body: dict[str, Any], status: int, param: str, code: str
) -> None:
    reply = httpx.post(f"{gateway.url}/v1/embeddings", json=body)
    assert reply.status_code == status
    error = reply.json()["error"]
    assert (error["param"], error["code"]) == (param, code)


@pytest.mark.parametrize(
    "body", [b"{", b"[]", b"\xff\xfe", b'{"model": "embed-small", "input": "a"']
)
def test_bodies_that_are_not_json_objects_are_400(gateway: GatewayServer, body: bytes) -> None:
    reply = httpx.post(
        f"{gateway.url}/v1/embeddings", content=body, headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400
    assert reply.json()["error"]["code"] == "invalid_json"


def test_the_simulated_provider_embeds_deterministically_at_the_size_asked(
    gateway: GatewayServer,
) -> None:
    sdk = gateway.sdk()
    first = sdk.embeddings.create(model="sim-embed", input=["red apple", "green apple", "car"])
    again = sdk.embeddings.create(model="sim-embed", input="red apple", encoding_format="float")
    assert len(first.data[0].embedding) == 16  # the provider's configured size
    assert first.data[0].embedding == pytest.approx(again.data[0].embedding, abs=1e-6)
    red, green, car = (d.embedding for d in first.data)

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(red, green) > cosine(red, car)  # shared words point the same way
    sized = sdk.embeddings.create(model="sim-embed", input="red apple", dimensions=64)
    assert len(sized.data[0].embedding) == 64


def test_bedrock_titan_answers_the_sdks_base64_request(
    gateway: GatewayServer, up: dict[str, MockUpstream]
) -> None:
    """Titan embeds one text a call: two inputs are two InvokeModel calls; the floats
    come back as the base64 the SDK asked for (by default) and decodes."""

    def titan(request: RecordedRequest) -> JSONReply:
        vector = [0.5, -0.25] if request.json["inputText"] == "first" else [1.0, 0.0]
        return JSONReply({"embedding": vector, "inputTextTokenCount": 3})

    up["aws"].set_default(ComputedReply(titan))
    raw = gateway.sdk().embeddings.with_raw_response.create(
        model="titan", input=["first", "second"], dimensions=256
    )
    answer = raw.parse()
    assert [d.embedding for d in answer.data] == [[0.5, -0.25], [1.0, 0.0]]
    assert sorted(r.json["inputText"] for r in up["aws"].requests) == ["first", "second"]
    sent = up["aws"].requests[0]
    assert sent.path == "/model/amazon.titan-embed-text-v2:0/invoke"
    assert sent.json["dimensions"] == 256
    assert sent.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert answer.usage.prompt_tokens == 6
    metadata = metadata_of(answer)
    assert metadata["provider"] == "aws" and metadata["cost"]["estimated"] is False
    assert metadata["cost"]["usd"] == pytest.approx(6 * 0.02 / 1e6)
    assert raw.http_response.headers["x-switchboard-model"] == "amazon.titan-embed-text-v2:0"


def test_bedrock_cohere_answers_floats_and_base64(
    gateway: GatewayServer, up: dict[str, MockUpstream]
) -> None:
    reply = JSONReply(
        {"embeddings": [[0.5, -0.25, 0.125]], "id": "e-1", "response_type": "embeddings_floats"},
        headers={"X-Amzn-Bedrock-Input-Token-Count": "4"},
    )
    up["aws"].enqueue(reply, reply)
    client = gateway.sdk()
    as_base64 = client.embeddings.create(model="cohere", input="which river is longest?")
    as_floats = client.embeddings.create(
        model="cohere", input="which river is longest?", encoding_format="float"
    )
    assert as_base64.data[0].embedding == as_floats.data[0].embedding == [0.5, -0.25, 0.125]
    sent = up["aws"].last_request
    assert sent.path == "/model/cohere.embed-english-v3/invoke"
    assert sent.json == {"texts": ["which river is longest?"], "input_type": "search_document"}
    assert as_floats.usage.prompt_tokens == 4
    assert metadata_of(as_floats)["cost"]["usd"] == pytest.approx(4 * 0.1 / 1e6)
