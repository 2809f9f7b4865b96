"""The metrics store over a real redis-server: the memory and Redis stores agree outcome
for outcome, replicas share what they learn, and a Redis that dies costs nothing but the
sharing until it is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import pytest
import redis.asyncio
from redis.asyncio.cluster import RedisCluster

from routing.config import MetricsConfig
from routing.stats import Outcome, PriceOverride, price_key
from routing.store.base import MetricsStore
from routing.store.errors import StoreUnavailable
from routing.store.factory import open_store
from routing.store.fields import IN_FLIGHT_FRESH, bin_of, bin_upper_ms
from routing.store.redis_store import EXPIRE_WINDOWS, RedisStore
from tests.redis_server import RedisClusterServers, RedisSentinelServers, RedisServer

CONFIG = MetricsConfig()  # window 60 s in buckets of 10 s
T0 = 1_000_000.0  # a bucket starts here
GPT = "openai/gpt-4o"
LLAMA = "groq/llama-3.3-70b"


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def ok(deployment: str, at: float, latency: float, **fields: Any) -> Outcome:
    return Outcome(deployment=deployment, at=at, ok=True, latency=latency, **fields)


def failed(deployment: str, at: float, error: str = "upstream_error", **fields: Any) -> Outcome:
    return Outcome(deployment=deployment, at=at, ok=False, latency=0.05, error=error, **fields)


def average(samples: list[tuple[float, float]], half_life: float) -> float:
    """Time-decayed average of (value, at) samples: each weighs 2^-(age / half_life)."""
    last = max(at for _, at in samples)
    weights = [2 ** (-(last - at) / half_life) for _, at in samples]
    return sum(v * w for (v, _), w in zip(samples, weights, strict=True)) / sum(weights)


def p(ms: float) -> float:
    """The percentile a histogram reports for a sample of `ms`."""
    return round(bin_upper_ms(bin_of(ms)), 1)


StoreFactory = Callable[..., RedisStore]


@pytest.fixture
async def redis_stores(redis_url: str, redis_prefix: str) -> AsyncIterator[StoreFactory]:
    """Redis stores on the session's server, under the test's own prefix."""
    made: list[RedisStore] = []

    def make(url: str = redis_url, **options: Any) -> RedisStore:
        options.setdefault("prefix", redis_prefix)
        store = RedisStore(url, options.pop("config", CONFIG), **options)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.aclose()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[MetricsStore]:
    """Each backend in turn, synced by hand (no background loop: deterministic)."""
    if request.param == "memory":
        store = MetricsStore(CONFIG, clock=clock, replica="r1")
    else:
        store = RedisStore(
            request.getfixturevalue("redis_url"),
            CONFIG,
            clock=clock,
            replica="r1",
            prefix=request.getfixturevalue("redis_prefix"),
        )
    yield store
    await store.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 3.0) -> float:
    """Seconds until `check()` holds; fails after `within`."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > within:
            pytest.fail(f"not within {within} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


# --------------------------------------------------------------------------- every backend


async def test_counts_and_averages(store: MetricsStore, clock: FakeClock) -> None:
    store.record(ok(GPT, T0 + 1, 0.1, completion_tokens=50))  # 500 tokens/s
    store.record(ok(GPT, T0 + 2, 0.2, ttft=0.05, completion_tokens=40, generation=0.1))
    store.record(failed(GPT, T0 + 3))
    store.record(ok(GPT, T0 + 4, 0.4, ttft=0.08))
    clock.advance(5)
    await store.sync()

    stats = store.snapshot().of(GPT)
    half, errors_half = CONFIG.half_life, CONFIG.errors_half_life
    assert (stats.requests, stats.errors, stats.error_rate) == (4, 1, 0.25)
    latency = average([(100, T0 + 1), (200, T0 + 2), (400, T0 + 4)], half)
    assert stats.latency_ms == round(latency, 1)
    assert (stats.latency_p50_ms, stats.latency_p95_ms) == (p(200), p(400))
    assert stats.ttft_ms == round(average([(50, T0 + 2), (80, T0 + 4)], half), 1)
    assert stats.ttft_p95_ms == p(80)
    assert stats.tokens_per_second == round(average([(500, T0 + 1), (400, T0 + 2)], half), 1)
    assert stats.completion_tokens == round(average([(50, T0 + 1), (40, T0 + 2)], 30.0), 1)
    failures = [(0, T0 + 1), (0, T0 + 2), (1, T0 + 3), (0, T0 + 4)]
    assert stats.recent_error_rate == round(average(failures, errors_half), 4)
    # the tries' weight, decayed to now (T0 + 5): 2^-(4/5) + 2^-(3/5) + 2^-(2/5) + 2^-(1/5)
    weight = sum(2 ** (-(T0 + 5 - at) / errors_half) for _, at in failures)
    assert stats.recent_requests == round(weight, 3)
    assert (stats.last_seen, stats.consecutive_failures) == (T0 + 4, 0)
    assert store.snapshot().of(LLAMA).requests == 0


async def test_the_window_slides(store: MetricsStore, clock: FakeClock) -> None:
    store.record(ok(GPT, T0 - 100, 0.9))  # older than the window: only the averages
    store.record(ok(GPT, T0 + 1, 0.1))
    await store.sync()
    clock.advance(15)
    store.record(failed(GPT, T0 + 14))  # the next bucket
    await store.sync()
    assert store.snapshot().of(GPT).requests == 2
    # the old sample has all but vanished from the average: 101 s older, 2^-101 its weight
    latency = round(average([(900, T0 - 100), (100, T0 + 1)], CONFIG.half_life), 1)
    assert store.snapshot().of(GPT).latency_ms == latency == 100.0

    clock.advance(50)  # T0 + 65: the first bucket left the window
    await store.sync()
    assert (store.snapshot().of(GPT).requests, store.snapshot().of(GPT).errors) == (1, 1)
    clock.advance(10)
    await store.sync()
    stats = store.snapshot().of(GPT)
    assert (stats.requests, stats.latency_p50_ms) == (0, None)
    assert stats.latency_ms == latency  # an average stays: only its weight fades
    assert stats.recent_requests < 1e-4


async def test_failures_cooldowns_and_the_circuit(store: MetricsStore, clock: FakeClock) -> None:
    store.record(failed(GPT, T0, cooldown_until=T0 + 5))
    store.record(failed(GPT, T0, cooldown_until=T0 + 3))
    await store.sync()
    store.record(failed(GPT, T0 + 1, open_until=T0 + 30))
    await store.sync()
    stats = store.snapshot().of(GPT)
    assert (stats.consecutive_failures, stats.cooldown_until) == (3, T0 + 5)
    assert (stats.open_until, stats.circuit(clock())) == (T0 + 30, "open")

    clock.advance(31)
    assert store.snapshot().of(GPT).circuit(clock()) == "half_open"
    store.record(ok(GPT, T0 + 31, 0.2, open_until=0.0))  # the probe worked
    await store.sync()
    stats = store.snapshot().of(GPT)
    assert (stats.consecutive_failures, stats.circuit(clock())) == (0, "closed")


async def test_in_flight(store: MetricsStore) -> None:
    store.started(GPT)
    store.started(GPT)
    store.started(LLAMA)
    store.finished(GPT)
    store.track([GPT, LLAMA])
    await store.sync()
    assert (store.snapshot().of(GPT).in_flight, store.snapshot().of(LLAMA).in_flight) == (1, 1)
    store.finished(LLAMA)
    await store.sync()
    assert store.snapshot().of(LLAMA).in_flight == 0


async def test_prices(store: MetricsStore) -> None:
    price = PriceOverride(input_per_mtok=1.5, output_per_mtok=6.0)
    await store.set_price("gpt-4o", "openai", price)
    assert store.snapshot().prices == {price_key("gpt-4o", "openai"): price}
    await store.sync()
    assert store.snapshot().prices == {price_key("gpt-4o", "openai"): price}
    await store.set_price("gpt-4o", "openai", None)
    await store.sync()
    assert store.snapshot().prices == {}


# --------------------------------------------------------------------------- parity


async def play(store: MetricsStore, clock: FakeClock) -> list[Any]:
    """One outcome sequence; the snapshot's statistics after each step."""
    seen = []

    async def checkpoint() -> None:
        await store.sync()
        seen.append(msgspec.to_builtins(store.snapshot().stats))

    store.track([GPT, LLAMA])
    await checkpoint()  # nothing yet
    store.record(ok(GPT, T0 - 90, 1.2))  # older than the window
    for i in range(6):
        store.record(ok(GPT, T0 + i, 0.1 + i * 0.07, ttft=0.03 * (i + 1), completion_tokens=20))
    store.record(failed(GPT, T0 + 6, cooldown_until=T0 + 12))
    store.record(ok(LLAMA, T0 + 2, 0.05, completion_tokens=300, generation=0.04))
    store.started(GPT)
    store.started(GPT)
    store.started(LLAMA)
    await checkpoint()
    clock.advance(12)
    store.finished(GPT)
    store.record(failed(GPT, T0 + 11))
    store.record(failed(GPT, T0 + 12, open_until=T0 + 42))
    store.record(failed(LLAMA, T0 + 11, error="rate_limited", cooldown_until=T0 + 20))
    await checkpoint()
    clock.advance(31)  # T0 + 43: half open
    store.finished(GPT)
    store.record(ok(GPT, T0 + 43, 0.3, open_until=0.0))
    await checkpoint()
    clock.advance(60)  # T0 + 103: the first buckets are out of the window
    store.record(ok(LLAMA, T0 + 100, 2.5, ttft=1.1, completion_tokens=900))
    await checkpoint()
    return seen


async def test_redis_and_memory_stores_agree(redis_stores: StoreFactory, clock: FakeClock) -> None:
    memory = MetricsStore(CONFIG, clock=clock, replica="r1")
    from_memory = await play(memory, clock)
    clock.now = T0
    from_redis = await play(redis_stores(clock=clock, replica="r1"), clock)

    assert from_redis == from_memory
    # and the sequence said something
    assert from_memory[1][GPT]["requests"] == 7
    assert from_memory[2][GPT]["open_until"] == T0 + 42
    assert from_memory[3][GPT]["consecutive_failures"] == 0
    assert (from_memory[4][GPT]["requests"], from_memory[4][LLAMA]["requests"]) == (0, 1)
    assert from_memory[4][LLAMA]["ttft_ms"] == 1100.0


# --------------------------------------------------------------------------- sharing


async def test_replicas_share_outcomes_and_in_flight(
    redis_stores: StoreFactory, clock: FakeClock
) -> None:
    a = redis_stores(clock=clock, replica="a")
    b = redis_stores(clock=clock, replica="b")
    b.track([GPT])
    a.record(ok(GPT, T0, 0.2))
    a.record(failed(GPT, T0, open_until=T0 + 30))
    a.started(GPT)
    a.started(GPT)
    b.started(GPT)
    await a.sync()
    await b.sync()
    stats = b.snapshot().of(GPT)
    assert (stats.requests, stats.errors, stats.open_until) == (2, 1, T0 + 30)
    assert stats.in_flight == 3
    await a.sync()
    assert a.snapshot().of(GPT).in_flight == 3

    a.finished(GPT)
    a.finished(GPT)  # back to 0: still said once, or B would go on counting 2
    await a.sync()
    await b.sync()
    assert b.snapshot().of(GPT).in_flight == 1

    a.started(GPT)
    await a.sync()
    clock.advance(IN_FLIGHT_FRESH + 1)  # A goes quiet: its count is ignored
    await b.sync()
    assert b.snapshot().of(GPT).in_flight == 1


async def test_prices_reach_other_replicas(redis_stores: StoreFactory) -> None:
    a, b = redis_stores(replica="a"), redis_stores(replica="b")
    price = PriceOverride(input_per_mtok=0.1, output_per_mtok=0.4, cached_input_per_mtok=0.05)
    await a.set_price("llama-3.3-70b", "groq", price)
    await b.sync()
    assert b.snapshot().prices == {"llama-3.3-70b|groq": price}
    await a.set_price("llama-3.3-70b", "groq", None)
    await b.sync()
    assert b.snapshot().prices == {}


async def test_keys_expire_after_the_window_or_the_open_circuit(
    redis_stores: StoreFactory, redis_url: str, clock: FakeClock
) -> None:
    store = redis_stores(clock=clock, replica="a")
    store.record(ok(GPT, T0, 0.2))
    store.record(failed(LLAMA, T0, open_until=T0 + 1000))
    await store.sync()
    few_windows = CONFIG.window * EXPIRE_WINDOWS * 1000
    async with redis.asyncio.Redis.from_url(redis_url) as client:
        for key in store.keys_of(GPT):
            assert few_windows - 5000 < await client.pttl(key) <= few_windows
        for key in store.keys_of(LLAMA):
            assert 1000_000 < await client.pttl(key) <= 1000_000 + few_windows


async def test_concurrent_syncs_write_everything_once(
    redis_stores: StoreFactory, clock: FakeClock
) -> None:
    a, b = redis_stores(clock=clock, replica="a"), redis_stores(clock=clock, replica="b")
    b.track([GPT])
    for i in range(20):
        a.record(ok(GPT, T0, 0.1))
        if i % 5 == 0:
            await asyncio.gather(a.sync(), a.sync())
    await asyncio.gather(a.sync(), a.sync())
    await b.sync()
    assert b.snapshot().of(GPT).requests == 20


async def test_a_write_sent_again_counts_once(redis_stores: StoreFactory, clock: FakeClock) -> None:
    """A flush whose reply was lost is sent again with the same numbers: Redis keeps the
    last number it applied per replica process, so the outcomes count once; the next
    flush, and another process's first, count."""
    a, b = redis_stores(clock=clock, replica="a"), redis_stores(clock=clock, replica="b")
    b.track([GPT])
    a.record(ok(GPT, T0, 0.1))
    a.record(ok(GPT, T0, 0.1))
    await a.sync()
    sent = [("openai/gpt-4o", delta, None, seq) for _, delta, seq in a._last_sent]
    assert sent and all(seq is not None for *_, seq in sent)
    for _ in range(2):  # as after a timeout: the same calls again
        failed_calls, _ = await a._record(sent, 0, clock.now)
        assert failed_calls == []
    a.record(ok(GPT, T0, 0.1))
    await a.sync()
    other = redis_stores(clock=clock, replica="a")  # a restarted process, same name
    other.record(ok(GPT, T0, 0.1))
    await other.sync()
    await b.sync()
    assert b.snapshot().of(GPT).requests == 4


async def test_unreadable_data_is_survived(
    redis_stores: StoreFactory, redis_url: str, redis_prefix: str, clock: FakeClock
) -> None:
    store = redis_stores(clock=clock, replica="a")
    store.record(ok(GPT, T0, 0.1))
    async with redis.asyncio.Redis.from_url(redis_url) as client:
        await client.hset(f"{redis_prefix}:prices", "m|p", b"{not json")
        await store.sync()
        assert not store.status().degraded
        assert store.snapshot().prices == {}  # the bad price is skipped
        await client.hset(store.keys_of(GPT)[1], "lat", "fast")
        await store.sync()  # raises nothing
    assert store.status().degraded
    assert store.snapshot().of(GPT).requests == 1  # local statistics


# --------------------------------------------------------------------------- topologies


async def test_cluster_spreads_deployments_over_nodes(
    redis_cluster: RedisClusterServers, clock: FakeClock
) -> None:
    deployments = [f"vendor{i}/model-{i}" for i in range(8)]
    a = RedisStore(redis_cluster.url, CONFIG, clock=clock, replica="a", prefix="c1")
    b = RedisStore(redis_cluster.url, CONFIG, clock=clock, replica="b", prefix="c1")
    try:
        for n, deployment in enumerate(deployments, 1):
            for _ in range(n):
                a.record(ok(deployment, T0, 0.1))
        a.started(deployments[0])
        await a.sync()
        assert not a.status().degraded, a.status().detail
        b.track(deployments)
        await b.sync()
        assert not b.status().degraded, b.status().detail
        for n, deployment in enumerate(deployments, 1):
            assert b.snapshot().of(deployment).requests == n
        assert b.snapshot().of(deployments[0]).in_flight == 1

        nodes = set()
        async with RedisCluster(host="127.0.0.1", port=redis_cluster.servers[0].port) as client:
            for deployment in deployments:
                window, state = a.keys_of(deployment)
                slot = await client.cluster_keyslot(window)
                assert await client.cluster_keyslot(state) == slot
                node = client.get_node_from_key(window)
                assert node is not None
                nodes.add(node.name)
        assert len(nodes) >= 2
    finally:
        await a.aclose()
        await b.aclose()


async def test_sentinel(redis_sentinel: RedisSentinelServers, clock: FakeClock) -> None:
    a = RedisStore(redis_sentinel.url, CONFIG, clock=clock, replica="a")
    b = RedisStore(redis_sentinel.url, CONFIG, clock=clock, replica="b")
    try:
        a.record(ok(GPT, T0, 0.1))
        await a.sync()
        b.track([GPT])
        await b.sync()
        assert not b.status().degraded, b.status().detail
        assert b.snapshot().of(GPT).requests == 1
        async with redis.asyncio.Redis(port=redis_sentinel.master.port) as master:
            assert await master.exists(*a.keys_of(GPT)) == 2  # written to the master
    finally:
        await a.aclose()
        await b.aclose()


# --------------------------------------------------------------------------- Redis down


async def test_redis_down_then_back(own_redis_server: RedisServer, clock: FakeClock) -> None:
    a = RedisStore(own_redis_server.url, CONFIG, clock=clock, replica="a")
    b = RedisStore(own_redis_server.url, CONFIG, clock=clock, replica="b")
    b.track([GPT])
    try:
        a.record(ok(GPT, T0, 0.1))
        await a.sync()
        assert not a.status().degraded

        own_redis_server.stop()
        for i in range(3):
            a.record(failed(GPT, T0 + 1 + i))
            await a.sync()  # raises nothing
        status = a.status()
        assert status.degraded
        assert status.detail is not None and "ConnectionError" in status.detail
        assert status.last_sync == T0
        stats = a.snapshot().of(GPT)
        assert (stats.requests, stats.errors, stats.consecutive_failures) == (4, 3, 3)
        with pytest.raises(StoreUnavailable):
            await a.set_price(
                "gpt-4o", "openai", PriceOverride(input_per_mtok=1, output_per_mtok=2)
            )
        assert a.snapshot().prices == {}  # refused: not set here either

        own_redis_server.restart()  # empty: it saved nothing

        async def recovered() -> bool:
            await a.sync()
            return not a.status().degraded

        await eventually(recovered, within=2.0)
        await b.sync()
        stats = b.snapshot().of(GPT)  # what A learned while Redis was down reached it
        assert (stats.requests, stats.errors, stats.consecutive_failures) == (3, 3, 3)
        assert a.dropped == 0
    finally:
        await a.aclose()
        await b.aclose()


async def test_failing_writes_mean_local_statistics(
    own_redis_server: RedisServer, clock: FakeClock
) -> None:
    with own_redis_server.client() as admin:  # may read, may not run scripts
        admin.acl_setuser(
            "reader",
            enabled=True,
            passwords=["+pw"],
            keys=["*"],
            commands=["+@read", "+@connection"],
        )
    url = own_redis_server.url.replace("//", "//reader:pw@")
    store = RedisStore(url, CONFIG, clock=clock, replica="a")
    store.track([GPT])
    try:
        store.record(ok(GPT, T0, 0.1))
        await store.sync()
        status = store.status()
        assert status.degraded
        assert status.detail is not None and "NoPermission" in status.detail
        assert store.snapshot().of(GPT).requests == 1  # its own, not Redis's empty hashes

        with own_redis_server.client() as admin:
            admin.acl_setuser("reader", commands=["+@all"])
        await store.sync()
        assert not store.status().degraded
        assert store.snapshot().of(GPT).requests == 1  # now from Redis
        with own_redis_server.client() as admin:
            assert admin.exists(*store.keys_of(GPT)) == 2
    finally:
        await store.aclose()


async def test_a_store_starts_while_redis_is_down(own_redis_server: RedisServer) -> None:
    own_redis_server.stop()
    store = RedisStore(own_redis_server.url, CONFIG, replica="a")
    try:
        started = time.monotonic()
        await store.start()
        assert time.monotonic() - started < 1.0
        assert store.status().degraded
        store.record(ok(GPT, time.time(), 0.1))
        await store.sync()
        assert store.snapshot().of(GPT).requests == 1  # local statistics

        own_redis_server.start()

        async def back() -> bool:
            return not store.status().degraded

        await eventually(back, within=3.0)  # the background loop, unaided
        async with redis.asyncio.Redis.from_url(own_redis_server.url) as client:
            assert await client.exists(*store.keys_of(GPT)) == 2
    finally:
        await store.aclose()


async def test_the_factory_opens_without_connecting(own_redis_server: RedisServer) -> None:
    own_redis_server.stop()  # nothing listens: opening must not notice
    store = open_store(own_redis_server.url, CONFIG, replica="a")
    assert isinstance(store, RedisStore)
    assert (store.status().backend, store.status().degraded) == ("redis", False)
    with pytest.raises(ValueError, match="not a Redis URL"):
        open_store("mongodb://localhost")
    await store.aclose()


async def test_background_loop_shares_within_a_second(redis_stores: StoreFactory) -> None:
    a, b = redis_stores(replica="a"), redis_stores(replica="b")
    b.track([GPT])
    await a.start()
    await b.start()
    a.record(ok(GPT, time.time(), 0.1))

    async def arrived() -> bool:
        return b.snapshot().of(GPT).requests == 1

    # a flush (0.2 s) then a refresh (0.5 s)
    assert await eventually(arrived, within=3.0) < 1.5
