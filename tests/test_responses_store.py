"""Kept responses: the memory store (bounded, expiring on an injected clock) and the Redis
store on real redis-servers (single, cluster, sentinel), which writes in the background,
answers from its queue until Redis has a response, and survives Redis going away."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest
import redis

from gateway.ingress.responses.config import ResponsesConfig
from gateway.ingress.responses.store import (
    MemoryResponseStore,
    ResponseStore,
    ResponseStoreUnavailable,
    StoredResponse,
    open_response_store,
)
from gateway.ingress.responses.store.redis import RedisResponseStore
from tests.redis_server import RedisClusterServers, RedisSentinelServers, RedisServer

MB = 1_000_000


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def kept(response_id: str, size: int = 10, owner: str = "team-a") -> StoredResponse:
    item = msgspec.Raw(msgspec.json.encode({"role": "user", "content": "x" * size}))
    return StoredResponse(id=response_id, owner=owner, created_at=1.0, items=[item])


async def eventually(check: Callable[[], Any], within: float = 5.0) -> None:
    """Wait on a condition (awaiting it if it is a coroutine), never on a duration."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.02)


@pytest.fixture
async def redis_store(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisResponseStore]:
    store = RedisResponseStore(redis_url, ResponsesConfig(), prefix=redis_prefix)
    await store.start()
    yield store
    await store.aclose()


@pytest.fixture(params=["memory", "redis"])
async def store(
    request: pytest.FixtureRequest, redis_url: str, redis_prefix: str
) -> AsyncIterator[ResponseStore]:
    """Each backend behind the one interface."""
    if request.param == "memory":
        store: ResponseStore = MemoryResponseStore(ResponsesConfig())
    else:
        store = RedisResponseStore(redis_url, ResponsesConfig(), prefix=redis_prefix)
    await store.start()
    yield store
    await store.aclose()


async def test_a_kept_response_is_read_back_whole(store: ResponseStore) -> None:
    response = kept("resp_1")
    marker = StoredResponse(id="resp_2", owner="team-b", created_at=2.0, provider="openai")
    store.put(response)
    store.put(marker)
    assert await store.get("resp_1") == response
    assert await store.get("resp_2") == marker
    assert await store.get("resp_unknown") is None


async def test_a_newer_version_replaces_the_older(store: ResponseStore) -> None:
    store.put(kept("resp_1", size=1))
    store.put(kept("resp_1", size=2))
    got = await store.get("resp_1")
    assert got is not None and got.items == kept("resp_1", size=2).items


def test_memory_responses_expire_after_their_retention() -> None:
    clock = FakeClock()
    store = MemoryResponseStore(ResponsesConfig(retention=60), clock=clock)
    store.put(kept("resp_old"))
    clock.now += 30
    store.put(kept("resp_new"))
    clock.now += 31  # the first is 61 s old, the second 31
    assert asyncio.run(store.get("resp_old")) is None
    assert asyncio.run(store.get("resp_new")) is not None
    assert len(store) == 1


def test_memory_is_bounded_by_bytes_the_oldest_evicted_first() -> None:
    store = MemoryResponseStore(ResponsesConfig(memory_max_bytes=MB))
    for n in range(30):
        store.put(kept(f"resp_{n}", size=100_000))  # ~100 kB each
    assert store.bytes <= MB and store.evicted == 30 - len(store)
    assert asyncio.run(store.get("resp_29")) is not None
    assert asyncio.run(store.get("resp_0")) is None


async def test_redis_writes_in_the_background_in_one_batch(
    redis_store: RedisResponseStore, redis_url: str, redis_prefix: str
) -> None:
    for n in range(50):
        redis_store.put(kept(f"resp_{n}"))
    # put() returned without I/O: until written, reads come from the queue, not Redis
    assert redis_store.pending > 0
    assert await redis_store.get("resp_7") == kept("resp_7")
    await eventually(lambda: redis_store.pending == 0)
    with redis.Redis.from_url(redis_url) as client:
        assert client.exists(*(redis_store.key(f"resp_{n}") for n in range(50))) == 50
        ttl = client.pttl(redis_store.key("resp_3"))
        assert 0 < ttl <= ResponsesConfig().retention * 1000
    assert redis_store.key("resp_3").startswith(f"{redis_prefix}:response:")
    assert await redis_store.get("resp_49") == kept("resp_49")


async def test_redis_responses_expire_after_their_retention(
    redis_url: str, redis_prefix: str
) -> None:
    store = RedisResponseStore(redis_url, ResponsesConfig(retention=0.3), prefix=redis_prefix)
    await store.start()
    try:
        store.put(kept("resp_short"))
        await eventually(lambda: store.pending == 0)
        await eventually(lambda: store.get("resp_short"), within=2)  # written...
        await eventually(lambda: _missing(store, "resp_short"), within=5)  # ...then gone
    finally:
        await store.aclose()


async def _missing(store: ResponseStore, response_id: str) -> bool:
    return await store.get(response_id) is None


async def test_another_replica_reads_what_one_wrote(redis_url: str, redis_prefix: str) -> None:
    writer = RedisResponseStore(redis_url, ResponsesConfig(), prefix=redis_prefix)
    reader = RedisResponseStore(redis_url, ResponsesConfig(), prefix=redis_prefix)
    await writer.start()
    try:
        writer.put(kept("resp_shared"))
        await eventually(lambda: reader.get("resp_shared"))
    finally:
        await writer.aclose()
        await reader.aclose()


async def test_redis_down_reads_fail_clearly_and_writes_wait(own_redis_server: RedisServer) -> None:
    store = RedisResponseStore(own_redis_server.url, ResponsesConfig())
    await store.start()
    try:
        own_redis_server.stop()
        store.put(kept("resp_during_outage"))
        # this replica still has it, from its queue
        assert await store.get("resp_during_outage") is not None
        with pytest.raises(ResponseStoreUnavailable) as raised:
            await store.get("resp_elsewhere")
        assert raised.value.status == 503 and raised.value.param == "previous_response_id"
        assert not await store.flush()  # Redis is gone: it stays queued
        assert store.pending == 1
        own_redis_server.start()  # empty: nothing was saved
        await eventually(lambda: store.pending == 0)
        with redis.Redis(port=own_redis_server.port) as client:
            assert client.exists(store.key("resp_during_outage"))
    finally:
        await store.aclose()


async def test_the_queue_is_bounded_during_an_outage(own_redis_server: RedisServer) -> None:
    store = RedisResponseStore(own_redis_server.url, ResponsesConfig(pending_max_bytes=MB))
    own_redis_server.stop()
    for n in range(30):
        store.put(kept(f"resp_{n}", size=100_000))
    assert store.pending < 30 and store.given_up == 30 - store.pending
    assert await store.get("resp_29") is not None  # the newest are kept
    await store.aclose()


async def test_closing_writes_what_is_queued(own_redis_server: RedisServer) -> None:
    store = RedisResponseStore(own_redis_server.url, ResponsesConfig())
    store.put(kept("resp_last"))  # never started: only aclose() can write it
    await store.aclose()
    with redis.Redis(port=own_redis_server.port) as client:
        assert client.exists(store.key("resp_last"))


async def test_unreadable_data_is_no_response(
    redis_store: RedisResponseStore, redis_url: str
) -> None:
    with redis.Redis.from_url(redis_url) as client:
        client.set(redis_store.key("resp_garbage"), b"{not json")
    assert await redis_store.get("resp_garbage") is None


async def test_cluster(redis_cluster: RedisClusterServers) -> None:
    """Keys spread over the masters; a pipeline of them is written and read back."""
    store = RedisResponseStore(redis_cluster.url, ResponsesConfig(), prefix="sbtest-cluster")
    await store.start()
    try:
        for n in range(30):
            store.put(kept(f"resp_{n}"))
        await eventually(lambda: store.pending == 0)
        nodes = set()
        for server in redis_cluster.servers:
            with server.client() as client:
                if client.dbsize():
                    nodes.add(server.port)
        assert len(nodes) > 1
        for n in range(30):
            assert await store.get(f"resp_{n}") == kept(f"resp_{n}")
    finally:
        await store.aclose()


async def test_sentinel(redis_sentinel: RedisSentinelServers) -> None:
    store = RedisResponseStore(redis_sentinel.url, ResponsesConfig(), prefix="sbtest-sentinel")
    await store.start()
    try:
        store.put(kept("resp_s"))
        await eventually(lambda: store.pending == 0)
        with redis_sentinel.master.client() as client:
            assert client.exists(store.key("resp_s"))
        fresh = RedisResponseStore(redis_sentinel.url, ResponsesConfig(), prefix="sbtest-sentinel")
        assert await fresh.get("resp_s") == kept("resp_s")
        await fresh.aclose()
    finally:
        await store.aclose()


def test_the_factory_follows_the_store_url() -> None:
    assert isinstance(open_response_store("memory://", ResponsesConfig()), MemoryResponseStore)
    opened = open_response_store("redis://127.0.0.1:1/0", ResponsesConfig())
    assert isinstance(opened, RedisResponseStore)  # nothing connected yet
    with pytest.raises(ValueError):
        open_response_store("redis+sentinel://127.0.0.1:1", ResponsesConfig())
