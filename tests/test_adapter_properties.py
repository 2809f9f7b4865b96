"""Property: no valid OpenAI request makes any adapter raise anything but a typed,
client-facing error. Each adapter runs for real against a loopback upstream that always
gives a well-formed answer in that vendor's shape, so a failure is ours."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings

from gateway.chat_decoding import decode_chat_body
from providers.base import Provider, ProviderCall
from providers.chat_types import ChatRequest
from providers.config import ProviderConfig
from providers.errors import ProviderError, SwitchboardError
from providers.registry import build_provider
from tests.mock_upstream import JSONReply, MockUpstream, completion
from tests.openai_requests import chat_bodies

FIXTURES = Path(__file__).parent / "fixtures"


def vendor_answer(path: str, key: str) -> Any:
    return json.loads((FIXTURES / path).read_text())[key]


# kind → (provider config for a base URL, the upstream's canned answer, deployment model id)
ADAPTERS: dict[str, tuple[Any, Any, str]] = {
    "openai": (
        lambda url: {"kind": "openai", "base_url": f"{url}/v1", "api_key": "k"},
        completion(),
        "gpt-4o-mini",
    ),
    "openai-preset-mistral": (
        lambda url: {"kind": "openai", "preset": "mistral", "base_url": f"{url}/v1"},
        completion(),
        "mistral-large-latest",
    ),
    "azure": (
        lambda url: {"kind": "azure", "endpoint": url, "api_key": "k"},
        completion(),
        "my-deployment",
    ),
    "anthropic": (
        lambda url: {"kind": "anthropic", "base_url": url, "api_key": "k"},
        vendor_answer("anthropic/response_text_cached.json", "anthropic"),
        "claude-sonnet-4-20250514",
    ),
    "gemini": (
        lambda url: {"kind": "gemini", "base_url": f"{url}/v1beta", "api_key": "k"},
        vendor_answer("gemini/response_text.json", "gemini"),
        "gemini-2.5-flash",
    ),
    "bedrock": (
        lambda url: {
            "kind": "bedrock",
            "region": "us-east-1",
            "base_url": url,
            "access_key_id": "AKIDEXAMPLE",
            "secret_access_key": "secret",
        },
        vendor_answer("bedrock/response_text.json", "bedrock"),
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
    ),
}


@pytest.fixture(scope="module", params=sorted(ADAPTERS))
def adapter(request: pytest.FixtureRequest) -> Iterator[tuple[ProviderConfig, str]]:
    make_config, answer, model = ADAPTERS[request.param]
    with MockUpstream() as upstream:
        upstream.set_default(JSONReply(answer))
        url = f"http://127.0.0.1:{upstream.port}"
        yield msgspec.convert(make_config(url), ProviderConfig), model


async def _complete(config: ProviderConfig, model: str, chat: ChatRequest) -> None:
    provider: Provider = build_provider("under-test", config)
    try:
        # as routing does: what the deployment cannot honour is dropped from the call
        dropped = provider.unsupported_params(chat, provider.capabilities)
        call = ProviderCall(request=chat, model=model, drop_params=tuple(dropped))
        response = await provider.complete(call)
        answer = json.loads(response.body)
        assert answer["object"] == "chat.completion" and answer["choices"], answer
    finally:
        await provider.aclose()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=chat_bodies())
def test_any_valid_request_is_translated_or_refused_with_a_typed_400(
    adapter: tuple[ProviderConfig, str], body: dict[str, Any]
) -> None:
    config, model = adapter
    chat, _ = decode_chat_body(json.dumps(body).encode())
    try:
        asyncio.run(_complete(config, model, chat))
    except SwitchboardError as error:
        # the upstream always answers well, so only a refusal of the request itself is fair
        assert not isinstance(error, ProviderError), repr(error)
        assert error.status == 400 and error.type == "invalid_request_error", repr(error)
        assert error.message
