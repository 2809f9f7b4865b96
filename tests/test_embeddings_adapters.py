"""Golden tests of every provider's embeddings operation: an OpenAI embeddings request →
what each upstream is sent, and the upstream's answers → the OpenAI answer, on the cases
in tests/fixtures/embeddings (its README names the vendor documentation of each shape).

Each case runs the real adapter and HTTP client against a mock upstream on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gateway.ingress.embeddings.decoding import decode_embedding_body
from providers.base import Provider
from providers.config import ProviderConfig
from providers.embedding_types import EmbeddingRequest, float32_base64, float32_values
from providers.embeddings import EmbeddingCall
from providers.errors import UpstreamProtocolError, UpstreamRateLimited, UpstreamRejectedRequest
from providers.registry import build_provider
from tests.bedrock_helpers import expected_authorization
from tests.mock_upstream import ComputedReply, ErrorReply, JSONReply, MockUpstream, RawReply, Reply
from tests.mock_upstream import RecordedRequest as Recorded

FIXTURES = Path(__file__).parent / "fixtures" / "embeddings"
CASES = sorted(path.name for path in FIXTURES.glob("*.json"))


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def provider_for(settings: dict[str, Any], upstream: MockUpstream) -> Provider:
    root = f"http://127.0.0.1:{upstream.port}"
    where = {
        "openai": {"base_url": f"{root}/v1"},
        "azure": {"endpoint": root},
        "gemini": {"base_url": f"{root}/v1beta"},
        "bedrock": {"base_url": root},
    }[settings["kind"]]
    config = msgspec.convert({**settings, **where}, ProviderConfig)
    return build_provider("upstream", config)


@pytest.fixture
async def adapters() -> AsyncIterator[list[Provider]]:
    built: list[Provider] = []
    yield built
    for provider in built:
        await provider.aclose()  # pooled connections belong to this test's loop


def request_of(body: dict[str, Any]) -> EmbeddingRequest:
    return decode_embedding_body(json.dumps(body).encode())[0]


def scripted(upstream: MockUpstream, exchanges: list[dict[str, Any]]) -> None:
    """Each upstream request gets the reply of the fixture exchange it matches (calls
    sent concurrently arrive in any order)."""

    def reply(request: Recorded) -> Reply:
        for exchange in exchanges:
            if exchange["path"] == request.path and exchange["body"] == request.json:
                return JSONReply(exchange["reply"], headers=exchange.get("headers", {}))
        return ErrorReply(400, f"unexpected request {request.path} {request.body!r}")

    upstream.set_default(ComputedReply(reply))


@pytest.mark.parametrize("name", CASES)
async def test_each_translation_both_ways(
    name: str, upstream: MockUpstream, adapters: list[Provider]
) -> None:
    case = load(name)
    provider = provider_for(case["provider"], upstream)
    adapters.append(provider)
    api = provider.embeddings
    assert api is not None
    request = request_of(case["openai_request"])
    assert api.refusal(request, case["model"]) is None
    dropped = api.unsupported_params(request, case["model"])
    assert dropped == case.get("dropped", [])
    scripted(upstream, case["upstream"])

    call = EmbeddingCall(request=request, model=case["model"], drop_params=tuple(dropped))
    answer = await api.embed(call)

    sent = sorted((r.path, json.dumps(r.json, sort_keys=True)) for r in upstream.requests)
    expected = sorted((e["path"], json.dumps(e["body"], sort_keys=True)) for e in case["upstream"])
    assert sent == expected
    for exchange in case["upstream"]:
        if "query" in exchange:
            assert all(r.query == exchange["query"] for r in upstream.requests)
    assert json.loads(answer.body) == case["openai_response"]
    tokens = case["prompt_tokens"]
    assert (answer.usage.prompt_tokens if answer.usage else None) == tokens


@pytest.mark.parametrize("name", [n for n in CASES if n.startswith(("titan", "cohere"))])
async def test_bedrock_calls_are_signed_for_the_body_sent(
    name: str, upstream: MockUpstream, adapters: list[Provider]
) -> None:
    case = load(name)
    settings = case["provider"]
    provider = provider_for(settings, upstream)
    adapters.append(provider)
    assert provider.embeddings is not None
    scripted(upstream, case["upstream"])
    request = request_of(case["openai_request"])
    await provider.embeddings.embed(EmbeddingCall(request=request, model=case["model"]))
    for sent in upstream.requests:
        url = f"http://127.0.0.1:{upstream.port}{sent.raw_path}"
        assert sent.headers["authorization"] == expected_authorization(
            "POST",
            url,
            sent.headers,
            sent.body,
            access_key=settings["access_key_id"],
            secret_key=settings["secret_access_key"],
            token=None,
            region=settings["region"],
        )


def test_base64_is_little_endian_float32_both_ways() -> None:
    vector = [0.5, -0.25, 0.125]
    assert float32_base64(vector) == "AAAAPwAAgL4AAAA+"
    assert float32_values("AAAAPwAAgL4AAAA+") == vector


# --- what each upstream cannot take ----------------------------------------------------

GEMINI = {"kind": "gemini", "api_key": "k"}
BEDROCK = {"kind": "bedrock", "region": "us-east-1", "access_key_id": "a", "secret_access_key": "s"}


@pytest.mark.parametrize(
    ("settings", "model", "body", "refusal"),
    [
        (GEMINI, "gemini-embedding-001", {"input": [1, 2, 3]}, "takes text, not token arrays"),
        (
            BEDROCK,
            "amazon.titan-embed-text-v2:0",
            {"input": [[1], [2]]},
            "takes text, not token arrays",
        ),
        (
            BEDROCK,
            "amazon.titan-embed-text-v1",
            {"input": "a", "dimensions": 256},
            "cannot honour dimensions",
        ),
        (
            BEDROCK,
            "cohere.embed-english-v3",
            {"input": "a", "dimensions": 256},
            "cannot honour dimensions",
        ),
        (
            BEDROCK,
            "meta.llama3-70b-instruct-v1:0",
            {"input": "a"},
            "is not a Titan or Cohere embedding model",
        ),
        (BEDROCK, "cohere.embed-v4:0", {"input": "a", "dimensions": 256}, None),
        (BEDROCK, "us.amazon.titan-embed-text-v2:0", {"input": "a", "dimensions": 256}, None),
    ],
)
def test_refusals_name_why(
    settings: dict[str, Any], model: str, body: dict[str, Any], refusal: str | None
) -> None:
    provider = build_provider("p", msgspec.convert(settings, ProviderConfig))
    assert provider.embeddings is not None
    assert provider.embeddings.refusal(request_of({"model": "m", **body}), model) == refusal


# --- upstream failures -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "model", "reply", "error"),
    [
        (
            {"kind": "openai"},
            "m",
            ErrorReply(400, "bad dims", param="dimensions"),
            UpstreamRejectedRequest,
        ),
        ({"kind": "openai"}, "m", RawReply(b"<html>oops</html>"), UpstreamProtocolError),
        ({"kind": "openai"}, "m", JSONReply({"object": "list"}), UpstreamProtocolError),
        (GEMINI, "gemini-embedding-001", JSONReply({"embedding": {}}), UpstreamProtocolError),
        (
            GEMINI,
            "gemini-embedding-001",
            JSONReply(
                {"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}},
                status=429,
            ),
            UpstreamRateLimited,
        ),
        (
            BEDROCK,
            "amazon.titan-embed-text-v2:0",
            JSONReply(
                {"message": "Too many requests"},
                status=429,
                headers={"x-amzn-errortype": "ThrottlingException:http://internal.amazon.com/"},
            ),
            UpstreamRateLimited,
        ),
    ],
)
async def test_upstream_failures_are_typed(
    settings: dict[str, Any],
    model: str,
    reply: Reply,
    error: type[Exception],
    upstream: MockUpstream,
    adapters: list[Provider],
) -> None:
    provider = provider_for(settings, upstream)
    adapters.append(provider)
    assert provider.embeddings is not None
    upstream.set_default(reply)
    call = EmbeddingCall(request=request_of({"model": "m", "input": "hi"}), model=model)
    with pytest.raises(error):
        await provider.embeddings.embed(call)


async def test_an_answer_with_too_few_vectors_is_a_protocol_error(
    upstream: MockUpstream, adapters: list[Provider]
) -> None:
    provider = provider_for(GEMINI, upstream)
    adapters.append(provider)
    assert provider.embeddings is not None
    upstream.set_default(JSONReply({"embeddings": [{"values": [0.5]}]}))
    request = request_of({"model": "m", "input": ["one", "two"]})
    with pytest.raises(UpstreamProtocolError, match="1 embeddings for 2 inputs"):
        await provider.embeddings.embed(EmbeddingCall(request=request, model="text-embedding-004"))
