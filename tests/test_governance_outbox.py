"""Governance's outbox against real Redis servers: spend and ledger entries settled while
Redis is unreachable reach it once it is back, exactly once; a batch sent again (its reply
lost, or not yet acknowledged by a replica) counts once; an outbox that overflows says so
(log line, counter) and keeps what fits."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.governance.ask import Ask, BudgetAsk, Settlement
from gateway.governance.redis_store import SETTLE_SCRIPT, RedisGovernanceStore
from tests.gateway_server import GatewayServer, upstream_config
from tests.mock_upstream import MockUpstream
from tests.redis_server import RedisClusterServers, RedisServer, SentinelGroup
from tests.routing_setup import HELLO, wait_until

DAY = "2026-12-07"
BUCKET = "key:a:d:day"
FIELD = "a\tt\tm\tp\tusd"
# generous: the probe pings once a second, and this machine may be loaded
TIMEOUT = 30.0


async def until(check: Callable[[], Awaitable[bool]], within: float = TIMEOUT) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "not within the time allowed"
        await asyncio.sleep(0.05)


def hold(name: str, amount: int = 100) -> Ask:
    return Ask(hold=name, budgets=(BudgetAsk(BUCKET, 10_000),), amount=amount, hold_ms=600_000)


def paid(name: str, actual: int, *, shared: bool = True) -> Settlement:
    return Settlement(hold=name, shared=shared, buckets=(BUCKET,), actual=actual)


def ledger(amount: int) -> dict[str, dict[str, int]]:
    return {DAY: {FIELD: amount}}


async def ledger_total(store: RedisGovernanceStore) -> int:
    return (await store.ledger([DAY])).get(DAY, {}).get(FIELD, 0)


@pytest.fixture
async def durable() -> AsyncIterator[tuple[RedisServer, RedisGovernanceStore]]:
    """A standalone Redis that keeps its data across a restart (append-only file), and a
    store on it with timeouts a loaded machine cannot trip."""
    with RedisServer("--appendonly", "yes", "--appendfsync", "always") as server:
        store = RedisGovernanceStore(server.url + "?socket_timeout=5&socket_connect_timeout=5")
        await store.start()
        try:
            yield server, store
        finally:
            await store.aclose()


async def test_spend_settled_during_an_outage_reaches_redis_once_it_is_back(
    durable: tuple[RedisServer, RedisGovernanceStore],
) -> None:
    server, store = durable
    assert (await store.admit(hold("before"))).shared
    await store.settle([paid("before", 10)], ledger(10), {"a": 1.0})
    assert (await store.admit(hold("during"))).shared  # held in Redis
    server.stop()
    # finished while Redis is down: a hold Redis has, and one held by this replica alone
    await store.settle([paid("during", 20)], ledger(20), {"a": 2.0})
    assert store.status().degraded
    local = await store.admit(hold("local"))
    assert local.allowed and not local.shared
    await store.settle([paid("local", 30, shared=False)], ledger(30), {"a": 3.0})
    assert store.outbox
    server.start()  # same folder: the append-only file brings back what it had

    async def delivered() -> bool:
        return not store.status().degraded and not store.outbox

    await until(delivered)
    # every cost once; the hold Redis had is released, the local one never reached it
    assert await store.spend([BUCKET]) == {BUCKET: (60, 0)}
    assert await ledger_total(store) == 60
    assert await store.last_used() == {"a": 3.0}
    assert store.status().dropped == 0


@pytest.fixture(params=["redis", "cluster"])
def shared_url(request: pytest.FixtureRequest, redis_url: str) -> str:
    """A standalone Redis or a cluster, with timeouts a loaded machine cannot outrun."""
    url = redis_url
    if request.param == "cluster":
        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        url = cluster.url
    return url + ("&" if "?" in url else "?") + "socket_timeout=10&socket_connect_timeout=10"


@pytest.fixture
async def shared_store(shared_url: str, redis_prefix: str) -> AsyncIterator[RedisGovernanceStore]:
    store = RedisGovernanceStore(shared_url, prefix=redis_prefix)
    await store.start()
    yield store
    keys = [k async for k in store.redis.scan_iter(match=f"{redis_prefix}:*")]
    if keys:
        await store.redis.delete(*keys)
    await store.aclose()


async def test_a_batch_sent_again_counts_once(
    shared_store: RedisGovernanceStore, shared_url: str, redis_prefix: str
) -> None:
    store = shared_store
    store.outbox.add([paid("", 7)], ledger(7), {"a": 1.0})
    batches = store.outbox.take()
    await store.redis.script_load(SETTLE_SCRIPT)
    # applied, then sent again as after a lost reply: the second call changes nothing
    first, again = await store._settle_pipeline(batches), await store._settle_pipeline(batches)
    assert (first[0], again[0]) == (1, 0)
    store.outbox.applied(batches, confirmed=True)
    assert await store.spend([BUCKET]) == {BUCKET: (7, 0)}
    assert await ledger_total(store) == 7
    # the next batch of this process counts; so does another process's first batch
    await store.settle([paid("", 5)], ledger(5))
    other = RedisGovernanceStore(shared_url, prefix=redis_prefix)
    try:
        await other.settle([paid("", 3)], ledger(3))
        assert not other.outbox
    finally:
        await other.aclose()
    assert not store.outbox
    assert await store.spend([BUCKET]) == {BUCKET: (15, 0)}
    assert await ledger_total(store) == 15


async def test_an_overflowing_outbox_is_bounded_logged_and_counted(
    durable: tuple[RedisServer, RedisGovernanceStore], caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = durable
    store = RedisGovernanceStore(server.url + "?socket_timeout=5", outbox_limit=3)
    await store.start()
    try:
        server.stop()
        with caplog.at_level(logging.WARNING, "switchboard.governance"):
            for i in range(5):  # a bucket each: 5 entries, room for 3
                one = Settlement(hold="", shared=True, buckets=(f"key:k{i}:d:day",), actual=1)
                await store.settle([one])
            # more for a bucket already waiting takes no room: summed, never dropped
            await store.settle(
                [Settlement(hold="", shared=True, buckets=("key:k1:d:day",), actual=1)]
            )
        assert len(store.outbox) == 3
        assert store.status().dropped == 2
        full = [r for r in caplog.records if "governance outbox full" in r.getMessage()]
        assert [r.getMessage().split(": ")[1].split(",")[0] for r in full] == [
            "1 settlements dropped"
        ] * 2
        server.start()

        async def delivered() -> bool:
            return not store.status().degraded and not store.outbox

        await until(delivered)
        buckets = [f"key:k{i}:d:day" for i in range(5)]
        spent = {b: s for b, (s, _) in (await store.spend(buckets)).items()}
        assert spent == {buckets[0]: 1, buckets[1]: 2, buckets[2]: 1, buckets[3]: 0, buckets[4]: 0}
    finally:
        await store.aclose()


async def test_a_batch_no_replica_acknowledged_is_sent_again_and_counts_once(
    sentinel_group: SentinelGroup,
) -> None:
    store = RedisGovernanceStore(sentinel_group.url + "?socket_timeout=5&socket_connect_timeout=5")
    await store.start()
    replica = sentinel_group.replica
    assert replica._process is not None
    try:
        await store.settle([paid("", 11)], ledger(11))
        assert not store.outbox  # the replica acknowledged it
        replica._process.send_signal(signal.SIGSTOP)  # connected, but acknowledges nothing
        try:
            await store.settle([paid("", 13)], ledger(13))
            assert store.outbox  # applied on the primary, kept until a replica has it
            assert await store.spend([BUCKET]) == {BUCKET: (24, 0)}
        finally:
            replica._process.send_signal(signal.SIGCONT)

        async def confirmed() -> bool:
            await store.settle([])
            return not store.outbox

        await until(confirmed)
        # sent again at every flush until then, and counted once
        assert await store.spend([BUCKET]) == {BUCKET: (24, 0)}
        assert await ledger_total(store) == 24
        with replica.client() as client:
            assert int(client.hget(store.key(BUCKET), "spent") or 0) == 24
    finally:
        await store.aclose()


def test_a_gateway_counts_what_its_full_outbox_dropped(
    own_redis_server: RedisServer,
    mock_upstream: MockUpstream,
    gateway_factory: Callable[[dict[str, Any]], GatewayServer],
) -> None:
    """`switchboard_store_outbox_dropped_total` says how many settlements a replica gave
    up on; here the outbox has no room at all, so each request's settlement is one."""
    key = "sk-outbox-client"
    config = {
        **upstream_config(mock_upstream.url),
        "store": own_redis_server.url,
        "auth": {
            "keys": [
                {
                    "name": "client",
                    "key_sha256": hashlib.sha256(key.encode()).hexdigest(),
                    "budget_usd": {"daily": 100},
                }
            ]
        },
    }
    gateway = gateway_factory(config)
    store = gateway.app.state.services.governance.store
    assert isinstance(store, RedisGovernanceStore)
    own_redis_server.stop()
    store.outbox.limit = 0
    client = gateway.sdk(key)
    for _ in range(3):
        client.chat.completions.create(model="test-model", messages=HELLO)  # type: ignore[arg-type]

    def dropped() -> float | None:
        text = httpx.get(f"{gateway.url}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "switchboard_store_outbox_dropped_total" and sample.labels == {
                    "store": "governance"
                }:
                    return sample.value
        return None

    wait_until(lambda: dropped() == 3, TIMEOUT)
    assert store.status().dropped == 3
