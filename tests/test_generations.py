"""Looking up past requests by id: the store (memory, bounded and expiring on an injected
clock; Redis single, cluster and sentinel), and GET /v1/generations/{id} and OpenRouter's
GET /api/v1/generation?id= end to end, readable by the key that made the request and by
the admin key only."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import redis

from gateway.accounting import RequestRecord
from gateway.observability.config import GenerationsConfig
from gateway.observability.generations import MemoryGenerationStore, open_generation_store
from gateway.observability.generations.redis_store import RedisGenerationStore
from gateway.observability.generations.store import GenerationStore
from providers.chat_types import Usage
from routing.metadata import Attempt, Cost, RoutingMetadata
from tests.gateway_server import GatewayServer, metadata_of
from tests.mock_upstream import ErrorReply, MockUpstream
from tests.redis_server import RedisClusterServers, RedisSentinelServers, RedisServer
from tests.routing_setup import HELLO, routed_config, wait_until

StartGateway = Callable[[dict[str, Any]], GatewayServer]
ADMIN_KEY = "sb-admin-0000000000000000"
KEYS = {"alice": "sb-alice-0000000000001", "bob": "sb-bob-00000000000002"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def record(request_id: str, key: str | None = "alice", status: int = 200) -> RequestRecord:
    metadata = RoutingMetadata(
        provider="groq",
        provider_model_id="llama-3.3-70b-versatile",
        model_canonical="llama-3.3-70b",
        routing_strategy="cost",
        cost=Cost(usd=0.0001, input_usd=0.00004, output_usd=0.00006, estimated=False),
        latency_ms=412.5,
        ttft_ms=120.1,
        throughput_tps=88.2,
        attempts=[
            Attempt(provider="together", model="llama-3.3-70b", status=503, error="e", latency_ms=3)
        ],
        request_id=request_id,
    )
    return RequestRecord(
        request_id=request_id,
        endpoint="chat.completions",
        key=key,
        team="search",
        model="llama-3.3-70b",
        stream=True,
        status=status,
        error_code=None,
        routing_metadata=metadata,
        usage=Usage(prompt_tokens=10, completion_tokens=20, total_tokens=30),
        cost_usd=0.0001,
        cost_estimated=False,
        started_at=1_796_000_000.25,
        duration_ms=450.0,
        attempts=metadata.attempts,
    )


# --- the store ------------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis", "cluster", "sentinel"])
async def store(
    request: pytest.FixtureRequest, redis_url: str, redis_prefix: str
) -> AsyncIterator[GenerationStore]:
    """Each backend behind the one interface (cluster and sentinel start their servers)."""
    config = GenerationsConfig()
    if request.param == "memory":
        store: GenerationStore = MemoryGenerationStore(config)
    elif request.param == "redis":
        store = RedisGenerationStore(redis_url, config, prefix=redis_prefix)
    elif request.param == "cluster":
        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        store = RedisGenerationStore(cluster.url, config, prefix=redis_prefix)
    else:
        sentinel: RedisSentinelServers = request.getfixturevalue("redis_sentinel")
        store = RedisGenerationStore(sentinel.url, config, prefix=redis_prefix)
    await store.start()
    yield store
    await store.aclose()


async def test_a_record_is_read_back_whole(store: GenerationStore) -> None:
    first, second = record("req-1"), record("req-2", key=None, status=502)
    await store.deliver([first, second])  # as the accounts deliver a batch
    assert await store.get("req-1") == first
    assert await store.get("req-2") == second
    assert await store.get("req-unknown") is None


async def test_the_same_id_again_replaces_the_older(store: GenerationStore) -> None:
    await store.put_many([record("req-1", status=200)])
    await store.put_many([record("req-1", status=499)])
    got = await store.get("req-1")
    assert got is not None and got.status == 499


async def test_admissions_internals_are_not_kept(store: GenerationStore) -> None:
    from gateway.accounting import Admitted

    held = record("req-1")
    held.admitted = Admitted(hold="h1", shared=True, usd=1.0, tokens=5)
    await store.deliver([held])
    got = await store.get("req-1")
    assert got is not None and got.admitted is None


def test_memory_generations_expire_after_their_retention() -> None:
    clock = FakeClock()
    store = MemoryGenerationStore(GenerationsConfig(retention=60), clock=clock)
    asyncio.run(store.put_many([record("old")]))
    clock.now += 30
    asyncio.run(store.put_many([record("new")]))
    clock.now += 31  # the first is 61 s old, the second 31
    assert asyncio.run(store.get("old")) is None
    assert asyncio.run(store.get("new")) is not None
    assert len(store) == 1


def test_memory_is_bounded_the_oldest_going_first() -> None:
    store = MemoryGenerationStore(GenerationsConfig(memory_max_entries=100))
    asyncio.run(store.put_many([record(f"req-{n}") for n in range(250)]))
    assert len(store) == 100
    assert asyncio.run(store.get("req-249")) is not None
    assert asyncio.run(store.get("req-149")) is None


async def test_redis_keys_expire_after_the_retention(redis_url: str, redis_prefix: str) -> None:
    store = RedisGenerationStore(redis_url, GenerationsConfig(retention=3600), prefix=redis_prefix)
    await store.put_many([record("req-ttl")])
    ttl = redis.Redis.from_url(redis_url).pttl(f"{redis_prefix}:generation:req-ttl")
    assert 3_590_000 < ttl <= 3_600_000  # Redis drops it; nothing sweeps
    await store.aclose()


async def test_redis_down_records_wait_and_are_still_read_here(
    own_redis_server: RedisServer,
) -> None:
    store = RedisGenerationStore(own_redis_server.url, GenerationsConfig(), prefix="t")
    own_redis_server.stop()
    await store.put_many([record("req-while-down")])  # no exception: it waits
    assert await store.get("req-while-down") is not None  # from this replica's queue
    own_redis_server.start()
    await store.put_many([record("req-after")])  # the next delivery writes both
    again = RedisGenerationStore(own_redis_server.url, GenerationsConfig(), prefix="t")
    assert await again.get("req-while-down") is not None
    assert await again.get("req-after") is not None
    await store.aclose()
    await again.aclose()


def test_an_unusable_store_url_is_refused() -> None:
    with pytest.raises(ValueError, match="not a Redis URL"):
        open_generation_store("mysql://x", GenerationsConfig())


# --- the endpoints --------------------------------------------------------------------


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def keyed_config(url: str, store: str = "memory://") -> dict[str, Any]:
    config = routed_config({"m": [("a", 1.0), ("b", 2.0)]}, {"a": url, "b": url}, store=store)
    config["auth"] = {
        "teams": [{"name": "search"}],
        "keys": [
            {"name": "alice", "key_sha256": _digest(KEYS["alice"]), "team": "search"},
            {"name": "bob", "key_sha256": _digest(KEYS["bob"])},
        ],
    }
    config["admin"] = {"key_sha256": _digest(ADMIN_KEY)}
    return config


def lookup(gateway: GatewayServer, path: str, key: str | None) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.get(f"{gateway.url}{path}", headers=headers, timeout=5)


def found(gateway: GatewayServer, path: str, key: str | None) -> httpx.Response:
    """The lookup once the record has been delivered (every 0.1 s, off the request path)."""
    answers: list[httpx.Response] = []

    def there() -> bool:
        answers.append(lookup(gateway, path, key))
        return answers[-1].status_code != 404

    wait_until(there, timeout=10)
    return answers[-1]


def test_a_past_request_by_its_id(gateway_factory: StartGateway, upstream: MockUpstream) -> None:
    upstream.enqueue(ErrorReply(503, "overloaded", type="server_error"))
    gateway = gateway_factory(keyed_config(upstream.url))
    answer = gateway.sdk(KEYS["alice"]).chat.completions.create(model="m", messages=HELLO)
    metadata = metadata_of(answer)
    request_id = metadata["request_id"]

    got = found(gateway, f"/v1/generations/{request_id}", KEYS["alice"])
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["object"] == "generation"
    assert body["id"] == request_id
    assert (body["endpoint"], body["key"], body["team"]) == ("chat.completions", "alice", "search")
    assert (body["model"], body["stream"], body["status"]) == ("m", False, 200)
    assert body["error_code"] is None
    assert body["routing_metadata"] == metadata  # exactly what the client was told
    assert body["usage"]["prompt_tokens"] == answer.usage.prompt_tokens
    assert body["usage"]["completion_tokens"] == answer.usage.completion_tokens
    assert body["cost"] == {"usd": metadata["cost"]["usd"], "estimated": False}
    timings = body["timings"]
    assert timings["latency_ms"] == metadata["latency_ms"]
    assert timings["duration_ms"] >= metadata["latency_ms"]
    assert [(a["provider"], a["status"]) for a in body["attempts"]] == [("a", 503)]
    assert body["created_at"].startswith(time.strftime("%Y-", time.gmtime()))

    # OpenRouter's endpoint, its shape and units
    openrouter = lookup(gateway, f"/api/v1/generation?id={request_id}", KEYS["alice"]).json()
    data = openrouter["data"]
    assert data["id"] == request_id
    assert data["total_cost"] == data["usage"] == metadata["cost"]["usd"]
    assert data["provider_name"] == "b" and data["model"] == "m"
    assert data["tokens_prompt"] == answer.usage.prompt_tokens
    assert data["tokens_completion"] == answer.usage.completion_tokens
    assert data["streamed"] is False and data["cancelled"] is False
    assert data["latency"] == timings["duration_ms"]
    assert data["generation_time"] == metadata["latency_ms"]
    assert data["routing_metadata"] == metadata


def test_only_its_key_and_the_admin_may_read_it(
    gateway_factory: StartGateway, upstream: MockUpstream
) -> None:
    gateway = gateway_factory(keyed_config(upstream.url))
    answer = gateway.sdk(KEYS["alice"]).chat.completions.create(model="m", messages=HELLO)
    path = f"/v1/generations/{metadata_of(answer)['request_id']}"
    assert found(gateway, path, KEYS["alice"]).status_code == 200
    assert lookup(gateway, path, ADMIN_KEY).status_code == 200
    other = lookup(gateway, path, KEYS["bob"])  # as if it did not exist
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "generation_not_found"
    assert lookup(gateway, path, None).status_code == 401
    assert lookup(gateway, path, "sb-made-up-key").status_code == 401
    unknown = lookup(gateway, "/v1/generations/no-such-request", ADMIN_KEY)
    assert unknown.status_code == 404
    assert lookup(gateway, "/v1/generations/" + "x" * 300, ADMIN_KEY).status_code == 404
    missing = lookup(gateway, "/api/v1/generation", ADMIN_KEY)
    assert missing.status_code == 400
    assert (missing.json()["error"]["code"], missing.json()["error"]["param"]) == (
        "missing_field",
        "id",
    )


def test_error_answers_and_streams_are_kept_too(
    gateway_factory: StartGateway, upstream: MockUpstream
) -> None:
    gateway = gateway_factory(keyed_config(upstream.url))
    refused = gateway.post(
        {"model": "nope", "messages": HELLO},
        headers={"authorization": f"Bearer {KEYS['bob']}", "x-request-id": "bob-req-1"},
    )
    assert refused.status_code == 404
    body = found(gateway, "/v1/generations/bob-req-1", KEYS["bob"]).json()
    assert (body["status"], body["error_code"], body["routing_metadata"]) == (
        404,
        "model_not_found",
        None,
    )
    chunks = list(
        gateway.sdk(KEYS["bob"]).chat.completions.create(
            model="m", messages=HELLO, stream=True, extra_headers={"x-request-id": "bob-req-2"}
        )
    )
    streamed = found(gateway, "/v1/generations/bob-req-2", KEYS["bob"]).json()
    assert streamed["stream"] is True
    assert streamed["routing_metadata"] == metadata_of(chunks[-1])
    assert streamed["timings"]["ttft_ms"] is not None


def test_under_auth_none_anyone_may_read(
    gateway_factory: StartGateway, upstream: MockUpstream
) -> None:
    gateway = gateway_factory(routed_config({"m": [("a", 1.0)]}, {"a": upstream.url}))
    answer = gateway.sdk().chat.completions.create(model="m", messages=HELLO)
    got = found(gateway, f"/v1/generations/{metadata_of(answer)['request_id']}", None)
    assert got.status_code == 200 and got.json()["key"] is None


def test_replicas_sharing_redis_find_each_others_requests(
    gateway_factory: StartGateway, upstream: MockUpstream, redis_url: str
) -> None:
    first = gateway_factory(keyed_config(upstream.url, store=redis_url))
    second = gateway_factory(keyed_config(upstream.url, store=redis_url))
    answer = first.sdk(KEYS["alice"]).chat.completions.create(model="m", messages=HELLO)
    path = f"/v1/generations/{metadata_of(answer)['request_id']}"
    assert found(second, path, KEYS["alice"]).json()["routing_metadata"] == metadata_of(answer)


def test_they_are_kept_for_the_retention(
    gateway_factory: StartGateway, upstream: MockUpstream
) -> None:
    config = routed_config({"m": [("a", 1.0)]}, {"a": upstream.url})
    config["generations"] = {"retention": 0.5}
    gateway = gateway_factory(config)
    answer = gateway.sdk().chat.completions.create(model="m", messages=HELLO)
    path = f"/v1/generations/{metadata_of(answer)['request_id']}"
    assert found(gateway, path, None).status_code == 200
    wait_until(lambda: lookup(gateway, path, None).status_code == 404, timeout=10)
