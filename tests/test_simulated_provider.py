from __future__ import annotations

import time

import msgspec
import openai
import pytest

from gateway.chat_decoding import decode_chat_body
from providers.base import ProviderCall
from providers.chat_types import ChatResponse
from providers.errors import UpstreamRateLimited, UpstreamUnavailable
from providers.simulated.adapter import SimulatedProvider
from providers.simulated.config import SimulatedConfig
from tests.gateway_server import BASE_CONFIG


def call(body: bytes) -> ProviderCall:
    request, _ = decode_chat_body(body)
    return ProviderCall(request=request, model="sim-1")


HELLO = b'{"model":"m","messages":[{"role":"user","content":"hello there"}]}'


async def test_complete_is_a_valid_chat_completion_with_usage() -> None:
    provider = SimulatedProvider("sim", SimulatedConfig(completion_tokens=5, text="a b. c d."))
    response = await provider.complete(call(HELLO))
    parsed = msgspec.json.decode(response.body, type=ChatResponse)
    # whole sentences, as many as fit in completion_tokens: never cut mid-sentence
    assert parsed.choices[0].message.content == "a b. c d."
    assert parsed.choices[0].finish_reason == "stop"
    assert parsed.model == "sim-1"
    assert response.usage is not None and response.usage.completion_tokens == 4


async def test_max_tokens_caps_output_and_reports_length() -> None:
    provider = SimulatedProvider("sim", SimulatedConfig(completion_tokens=50))
    body = b'{"model":"m","max_tokens":3,"messages":[{"role":"user","content":"x"}]}'
    parsed = msgspec.json.decode((await provider.complete(call(body))).body, type=ChatResponse)
    assert parsed.usage is not None and parsed.usage.completion_tokens == 3
    assert parsed.choices[0].finish_reason == "length"


async def test_stream_timing_follows_ttft_and_tokens_per_second() -> None:
    config = SimulatedConfig(
        ttft_ms=100, tokens_per_second=100, completion_tokens=10, text="1 2 3 4 5 6 7 8 9 10."
    )
    provider = SimulatedProvider("sim", config)
    started = time.perf_counter()
    first_output = None
    outputs = 0
    async for chunk in provider.stream(call(HELLO)):
        if chunk.has_output:
            outputs += 1
            first_output = first_output or time.perf_counter() - started
    total = time.perf_counter() - started
    assert outputs == 10
    assert first_output is not None and first_output >= 0.1
    assert total >= 0.1 + 10 / 100  # TTFT plus ten tokens at 100/s


@pytest.mark.parametrize(
    ("status", "error"), [(503, UpstreamUnavailable), (429, UpstreamRateLimited)]
)
async def test_failures_are_typed_provider_errors(status: int, error: type[Exception]) -> None:
    provider = SimulatedProvider("sim", SimulatedConfig(failure_rate=1.0, failure_status=status))
    with pytest.raises(error):
        await provider.complete(call(HELLO))


async def test_failure_rate_is_reproducible_under_a_seed() -> None:
    def outcomes() -> list[bool]:
        provider = SimulatedProvider("sim", SimulatedConfig(failure_rate=0.3, seed=42))
        results = []
        for _ in range(200):
            try:
                provider._maybe_fail()
                results.append(True)
            except UpstreamUnavailable:
                results.append(False)
        return results

    first = outcomes()
    assert first == outcomes()
    assert 30 <= first.count(False) <= 90  # about 30% of 200


def test_simulated_stream_through_the_gateway(gateway_factory) -> None:
    gateway = gateway_factory(
        {
            **BASE_CONFIG,
            "providers": {"sim": {"kind": "simulated", "ttft_ms": 50, "tokens_per_second": 500}},
            "models": {
                "sim-model": {
                    "deployments": [
                        {
                            "provider": "sim",
                            "model": "sim-1",
                            "input_per_mtok": 1,
                            "output_per_mtok": 1,
                        }
                    ]
                }
            },
        }
    )
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x")
    chunks = list(
        client.chat.completions.create(
            model="sim-model", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("This is a simulated answer")
    closing = chunks[-1]
    assert closing.choices == []
    assert closing.model_extra is not None
    metadata = closing.model_extra["routing_metadata"]
    assert metadata["ttft_ms"] >= 50
    assert metadata["cost"]["estimated"] is False
    # two whole sentences of the default text (7 words each) fit in 16 tokens
    assert closing.usage is not None and closing.usage.completion_tokens == 14
