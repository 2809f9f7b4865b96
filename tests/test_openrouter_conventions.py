"""OpenRouter's response conventions, for clients written against OpenRouter: the cost
in `usage.cost` as well as in `routing_metadata.cost` (chat, streams, embeddings)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway_server import GatewayServer, metadata_of, upstream_config
from tests.mock_upstream import (
    JSONReply,
    MockUpstream,
    SSEReply,
    completion,
    make_usage,
)


def cost_of(prompt: int, completion: int) -> float:
    return round((prompt * 2.0 + completion * 8.0) / 1e6, 10)  # test-model's prices


@pytest.fixture(scope="module")
def gateway(shared_upstream: MockUpstream) -> Iterator[GatewayServer]:
    server = GatewayServer(upstream_config(shared_upstream.url)).start()
    yield server
    server.stop()


def test_a_chat_answer_carries_its_cost_in_usage(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    answer = gateway.sdk().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.usage is not None
    cost = cost_of(answer.usage.prompt_tokens, answer.usage.completion_tokens)
    assert (answer.usage.model_extra or {})["cost"] == cost == metadata_of(answer)["cost"]["usd"]


def test_an_upstreams_own_usage_cost_is_replaced_by_ours(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    usage = {**make_usage(prompt_tokens=10, completion_tokens=4), "cost": 99.0, "is_byok": False}
    upstream.enqueue(JSONReply(completion(usage=usage)))
    answer = gateway.sdk().chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.usage is not None
    assert answer.usage.model_extra == {"cost": cost_of(10, 4), "is_byok": False}


def test_a_streams_closing_chunk_carries_its_cost_in_usage(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    chunks = list(
        gateway.sdk().chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    closing = chunks[-1]
    assert closing.choices == [] and closing.usage is not None
    cost = cost_of(closing.usage.prompt_tokens, closing.usage.completion_tokens)
    assert (closing.usage.model_extra or {})["cost"] == metadata_of(closing)["cost"]["usd"] == cost


def test_a_stream_without_an_upstream_usage_chunk_still_carries_a_cost(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    upstream.enqueue(SSEReply(include_usage=False))
    chunks = list(
        gateway.sdk().chat.completions.create(
            model="test-model", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    closing = chunks[-1]
    assert closing.usage is not None
    metadata = metadata_of(closing)
    assert metadata["cost"]["estimated"] is True
    assert (closing.usage.model_extra or {})["cost"] == metadata["cost"]["usd"] > 0
