"""OpenRouter's response conventions, for clients written against OpenRouter: the cost
in `usage.cost` as well as in `routing_metadata.cost` (chat, streams, embeddings)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.routes.models import per_token
from tests.gateway_server import GatewayServer, metadata_of, upstream_config
from tests.mock_upstream import (
    JSONReply,
    MockUpstream,
    SSEReply,
    completion,
    make_usage,
)
from tests.routing_setup import wait_until

FREE = {"input_per_mtok": 0, "output_per_mtok": 0}
ONE_TWO = {"input_per_mtok": 1, "output_per_mtok": 2}


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


# --- /v1/models: `pricing` and `context_length` ------------------------------------------


def test_models_carry_openrouters_pricing_and_context_length(gateway_factory: Any) -> None:
    config = {
        "auth": "none",
        "store": "memory://",
        "providers": {
            "a": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"},
            "b": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"},
        },
        "models": {
            "chat": {
                "deployments": [
                    {"provider": "a", "model": "gpt-4o-mini"},  # catalogue: 0.15 / 0.60, 128000
                    {
                        "provider": "b",
                        "model": "x",
                        "input_per_mtok": 0.59,
                        "output_per_mtok": 0.79,
                        "capabilities": {"context_window": 8192},
                    },
                ]
            },
            "embed": {"deployments": [{"provider": "a", "model": "text-embedding-3-small"}]},
            "free": {
                "deployments": [
                    {"provider": "b", "model": "y", "input_per_mtok": 0, "output_per_mtok": 0}
                ]
            },
        },
    }
    gateway = gateway_factory(config)
    listed = {m.id: m for m in gateway.sdk().models.list().data}
    chat = listed["chat"].model_extra or {}
    # the cheapest deployment's prices, per token, as OpenRouter writes them
    assert chat["pricing"] == {"prompt": "0.00000015", "completion": "0.0000006"}
    assert chat["context_length"] == 128000  # the largest window a deployment has
    embed = listed["embed"].model_extra or {}
    assert embed["pricing"] == {"prompt": "0.00000002", "completion": "0"}
    assert embed["context_length"] is None  # unknown
    assert (listed["free"].model_extra or {})["pricing"] == {"prompt": "0", "completion": "0"}
    one = httpx.get(f"{gateway.url}/v1/models/chat").json()
    assert one["pricing"] == chat["pricing"]


def test_a_live_price_is_the_price_listed(gateway_factory: Any) -> None:
    config = {
        "auth": "none",
        "store": "memory://",
        "admin": {"key_sha256": hashlib.sha256(b"admin-key").hexdigest()},
        "providers": {"a": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"}},
        "models": {
            "m": {
                "deployments": [
                    {"provider": "a", "model": "x", "input_per_mtok": 1, "output_per_mtok": 2}
                ]
            }
        },
    }
    gateway = gateway_factory(config)
    changed = httpx.put(
        f"{gateway.url}/v1/admin/prices",
        json={"model": "m", "provider": "a", "input_per_mtok": 0.5, "output_per_mtok": 1.5},
        headers={"authorization": "Bearer admin-key"},
    )
    assert changed.status_code == 200, changed.text
    wait_until(
        lambda: (
            httpx.get(f"{gateway.url}/v1/models/m").json()["pricing"]
            == {"prompt": "0.0000005", "completion": "0.0000015"}
        ),
        5,
    )


@pytest.mark.parametrize(
    ("per_mtok", "per_token_text"),
    [(0.59, "0.00000059"), (2.5, "0.0000025"), (0, "0"), (15, "0.000015"), (0.075, "0.000000075")],
)
def test_prices_per_token_are_plain_decimals(per_mtok: float, per_token_text: str) -> None:
    assert per_token(per_mtok) == per_token_text
