"""Golden tests of the legacy completions operation on OpenAI-wire upstreams (payloads in
tests/fixtures/completions; its README names the documentation of each shape), through
the real adapter and HTTP client against a mock upstream on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gateway.ingress.completions.decoding import decode_completion_body
from providers.base import Provider
from providers.completion_types import CompletionRequest
from providers.completions import TextCompletionCall
from providers.config import ProviderConfig
from providers.errors import UpstreamProtocolError, UpstreamStreamCut, UpstreamUnavailable
from providers.registry import build_provider
from tests.mock_upstream import ErrorReply, JSONReply, MockUpstream, RawReply, SSEReply

FIXTURES = Path(__file__).parent / "fixtures" / "completions"
MODEL = "gpt-3.5-turbo-instruct"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def request_of(body: dict[str, Any]) -> CompletionRequest:
    return decode_completion_body(json.dumps({"model": "m", **body}).encode())[0]


@pytest.fixture
async def built() -> AsyncIterator[list[Provider]]:
    providers: list[Provider] = []
    yield providers
    for provider in providers:
        await provider.aclose()


def provider(settings: dict[str, Any], upstream: MockUpstream, built: list[Provider]) -> Provider:
    root = f"http://127.0.0.1:{upstream.port}"
    where = {"endpoint": root} if settings["kind"] == "azure" else {"base_url": f"{root}/v1"}
    made = build_provider("up", msgspec.convert({**settings, **where}, ProviderConfig))
    built.append(made)
    return made


OPENAI = {"kind": "openai", "api_key": "sk-secret"}


@pytest.mark.parametrize("name", ["request_forwarded.json", "request_stream.json"])
async def test_the_body_is_forwarded_as_sent(
    name: str, upstream: MockUpstream, built: list[Provider]
) -> None:
    case = load(name)
    api = provider(OPENAI, upstream, built).legacy_completions
    assert api is not None
    call = TextCompletionCall(request=request_of(case["openai"]), model=MODEL)
    if call.request.stream:
        async for _ in api.stream(call):
            pass
    else:
        await api.complete(call)
    sent = upstream.last_request
    assert (sent.path, sent.json) == ("/v1/completions", case["upstream"])
    assert sent.headers["authorization"] == "Bearer sk-secret"


async def test_azure_addresses_the_deployment(
    upstream: MockUpstream, built: list[Provider]
) -> None:
    settings = {"kind": "azure", "api_key": "azure-secret", "api_version": "2024-10-21"}
    api = provider(settings, upstream, built).legacy_completions
    assert api is not None
    upstream.enqueue(JSONReply(load("response.json")["upstream"]))
    await api.complete(TextCompletionCall(request=request_of({"prompt": "x"}), model="instruct"))
    sent = upstream.last_request
    assert (sent.path, sent.query) == (
        "/openai/deployments/instruct/completions",
        {"api-version": "2024-10-21"},
    )
    assert sent.headers["api-key"] == "azure-secret"


async def test_the_answer_is_passed_through(upstream: MockUpstream, built: list[Provider]) -> None:
    case = load("response.json")
    api = provider(OPENAI, upstream, built).legacy_completions
    assert api is not None
    raw = json.dumps(case["upstream"], indent=1).encode()
    upstream.enqueue(RawReply(raw))
    answer = await api.complete(
        TextCompletionCall(request=request_of({"prompt": "x"}), model=MODEL)
    )
    assert answer.body == raw.strip()
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (5, 7)


async def test_stream_chunks_are_passed_through(
    upstream: MockUpstream, built: list[Provider]
) -> None:
    api = provider(OPENAI, upstream, built).legacy_completions
    assert api is not None
    sse = (FIXTURES / "stream.sse").read_text()
    upstream.enqueue(SSEReply([sse], send_done=False))
    call = TextCompletionCall(request=request_of({"prompt": "x", "stream": True}), model=MODEL)
    chunks = [chunk async for chunk in api.stream(call)]
    events = [line[6:].encode() for line in sse.splitlines() if line.startswith("data: {")]
    assert [c.data for c in chunks] == events
    assert [c.has_output for c in chunks] == [True, True, True, False]
    assert chunks[-1].usage_only and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 8


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (
            SSEReply(['data: {"choices":[{"text":"a","index":0}]}\n\n'], send_done=False),
            UpstreamStreamCut,
        ),
        (SSEReply(["data: {not json}\n\n"]), UpstreamProtocolError),
        (SSEReply(['data: {"error": {"message": "overloaded"}}\n\n']), UpstreamUnavailable),
        (ErrorReply(503, "down", type="server_error"), UpstreamUnavailable),
    ],
)
async def test_broken_streams_are_typed_errors(
    reply: Any, error: type[Exception], upstream: MockUpstream, built: list[Provider]
) -> None:
    api = provider(OPENAI, upstream, built).legacy_completions
    assert api is not None
    upstream.enqueue(reply)
    call = TextCompletionCall(request=request_of({"prompt": "x", "stream": True}), model=MODEL)
    with pytest.raises(error):
        async for _ in api.stream(call):
            pass


async def test_an_answer_that_is_no_text_completion_is_a_protocol_error(
    upstream: MockUpstream, built: list[Provider]
) -> None:
    api = provider(OPENAI, upstream, built).legacy_completions
    assert api is not None
    upstream.enqueue(JSONReply({"object": "list", "data": []}))
    with pytest.raises(UpstreamProtocolError):
        await api.complete(TextCompletionCall(request=request_of({"prompt": "x"}), model=MODEL))


@pytest.mark.parametrize("preset", ["groq", "mistral", "deepseek", "perplexity"])
def test_vendors_without_the_api_offer_no_operation(preset: str) -> None:
    made = build_provider(
        "p", msgspec.convert({"kind": "openai", "preset": preset}, ProviderConfig)
    )
    assert made.legacy_completions is None


@pytest.mark.parametrize("kind", ["anthropic", "gemini"])
def test_other_apis_offer_no_operation(kind: str) -> None:
    made = build_provider("p", msgspec.convert({"kind": kind, "api_key": "k"}, ProviderConfig))
    assert made.legacy_completions is None
