"""The governance store's decisions (rate limits, budget holds, settlement, expiry), the
same suite on process memory and on a real Redis: single, 3-master cluster, sentinel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.governance.ask import Ask, BudgetAsk, RateAsk, Settlement
from gateway.governance.redis_store import RedisGovernanceStore
from gateway.governance.store import GovernanceStore
from tests.redis_server import RedisClusterServers, RedisSentinelServers, RedisServer

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "redis", "cluster", "sentinel"])
async def store(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[GovernanceStore]:
    if request.param == "memory":
        yield GovernanceStore(clock=clock)
        return
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("redis_prefix")
    else:
        fixture = "redis_cluster" if request.param == "cluster" else "redis_sentinel"
        servers: RedisClusterServers | RedisSentinelServers = request.getfixturevalue(fixture)
        url = servers.url
        prefix = f"sbtest-{request.node.name[-40:].replace('[', '-').replace(']', '')}"
    # these tests are about what the store decides, not about a slow Redis: timeouts far
    # above what a loaded machine's event loop may take to connect 50 clients at once
    url += ("&" if "?" in url else "?") + "socket_timeout=10&socket_connect_timeout=10"
    store = RedisGovernanceStore(url, prefix=prefix, clock=clock, server_time=False)
    await store.start()
    assert not store.status().degraded
    yield store
    await store.redis.delete(*[k async for k in _keys(store, prefix)] or ["-"])
    await store.aclose()


async def _keys(store: RedisGovernanceStore, prefix: str) -> AsyncIterator[str]:
    async for key in store.redis.scan_iter(match=f"{prefix}:*"):
        yield key


def rpm(limit: int, key: str = "key:a:rpm") -> Ask:
    return Ask(hold="", rates=(RateAsk(key, limit, 1),))


def budget(hold: str, amount: int, limit: int, *buckets: str) -> Ask:
    return Ask(
        hold=hold,
        budgets=tuple(BudgetAsk(b, limit) for b in buckets or ("key:a:d:day",)),
        amount=amount,
        hold_ms=10_000,
    )


async def test_requests_per_minute_admit_a_minute_at_once_then_refill(
    store: GovernanceStore, clock: Clock
) -> None:
    verdicts = [await store.admit(rpm(6)) for _ in range(6)]
    assert all(v.allowed for v in verdicts)
    assert [v.rates[0].remaining for v in verdicts] == [5, 4, 3, 2, 1, 0]
    assert verdicts[-1].rates[0].reset_ms == 60_000
    refused = await store.admit(rpm(6))
    assert not refused.allowed and refused.refused == 0
    assert refused.retry_after_ms == 10_000  # one request's share of the minute
    clock.now += 10.0
    again = await store.admit(rpm(6))
    assert again.allowed and again.rates[0].remaining == 0


async def test_nothing_is_taken_when_one_limit_refuses(store: GovernanceStore) -> None:
    both = Ask(hold="", rates=(RateAsk("key:a:rpm", 100, 1), RateAsk("team:t:rpm", 1, 1)))
    assert (await store.admit(both)).allowed
    refused = await store.admit(both)
    assert not refused.allowed and refused.refused == 1
    # the key's own limit was not charged for the refused request
    alone = await store.admit(Ask(hold="", rates=(RateAsk("key:a:rpm", 100, 1),)))
    assert alone.rates[0].remaining == 98


async def test_tokens_per_minute_charge_the_estimate_and_settle_to_usage(
    store: GovernanceStore,
) -> None:
    ask = Ask(hold="", rates=(RateAsk("key:a:tpm", 1000, 600),))
    assert (await store.admit(ask)).allowed
    assert not (await store.admit(ask)).allowed
    # the request used 100 tokens, not 600: the other 500 come back
    await store.settle(
        [
            Settlement(
                hold="",
                shared=True,
                buckets=(),
                actual=0,
                tokens=(("key:a:tpm", 1000, -500),),
            )
        ]
    )
    verdict = await store.admit(ask)
    assert verdict.allowed and verdict.rates[0].remaining == 300


async def test_a_budget_admits_reservations_until_full(store: GovernanceStore) -> None:
    admitted = [await store.admit(budget(f"h{i}", 30, 100)) for i in range(4)]
    assert [v.allowed for v in admitted] == [True, True, True, False]
    assert admitted[-1].refused == 0
    assert await store.spend(["key:a:d:day"]) == {"key:a:d:day": (0, 90)}


async def test_settling_charges_the_real_cost_and_frees_the_rest(store: GovernanceStore) -> None:
    assert (await store.admit(budget("h1", 60, 100))).allowed
    assert not (await store.admit(budget("h2", 60, 100))).allowed
    await store.settle([Settlement(hold="h1", shared=True, buckets=("key:a:d:day",), actual=25)])
    assert await store.spend(["key:a:d:day"]) == {"key:a:d:day": (25, 0)}
    assert (await store.admit(budget("h2", 60, 100))).allowed
    assert not (await store.admit(budget("h3", 60, 100))).allowed


async def test_a_settlement_is_counted_once(store: GovernanceStore) -> None:
    assert (await store.admit(budget("h1", 60, 100))).allowed
    done = Settlement(hold="h1", shared=True, buckets=("key:a:d:day",), actual=10)
    await store.settle([done])
    await store.settle([Settlement(hold="h1", shared=True, buckets=(), actual=0)])
    assert await store.spend(["key:a:d:day"]) == {"key:a:d:day": (10, 0)}


async def test_reservations_of_a_dead_replica_expire(store: GovernanceStore, clock: Clock) -> None:
    assert (await store.admit(budget("lost", 90, 100))).allowed
    assert not (await store.admit(budget("h2", 20, 100))).allowed
    clock.now += 10.0  # the hold's lifetime: nobody settled it
    assert (await store.admit(budget("h2", 20, 100))).allowed
    assert await store.spend(["key:a:d:day"]) == {"key:a:d:day": (0, 20)}
    # the late settlement still charges what was really spent, and frees nothing twice
    await store.settle([Settlement(hold="lost", shared=True, buckets=("key:a:d:day",), actual=5)])
    assert await store.spend(["key:a:d:day"]) == {"key:a:d:day": (5, 20)}


async def test_every_bucket_of_a_hold_must_have_room(store: GovernanceStore) -> None:
    buckets = ("key:a:d:day", "team:t:m:month", "all:d:day")
    await store.settle([Settlement(hold="", shared=True, buckets=("team:t:m:month",), actual=80)])
    refused = await store.admit(budget("h1", 30, 100, *buckets))
    assert not refused.allowed and refused.refused == 1
    assert await store.spend(list(buckets)) == {
        "key:a:d:day": (0, 0),
        "team:t:m:month": (80, 0),
        "all:d:day": (0, 0),
    }


async def test_concurrent_admissions_never_overbook(store: GovernanceStore) -> None:
    verdicts = await asyncio.gather(*(store.admit(budget(f"h{i}", 7, 100)) for i in range(50)))
    assert sum(v.allowed for v in verdicts) == 14
    assert await store.spend(["key:a:d:day"]) == {"key:a:d:day": (0, 98)}


async def test_redis_down_limits_locally_and_reports_degraded(clock: Clock) -> None:
    with RedisServer() as server:
        store = RedisGovernanceStore(server.url, clock=clock, server_time=False)
        assert (await store.admit(rpm(1))).shared
        server.stop()
        verdict = await store.admit(rpm(1))
        assert verdict.allowed and not verdict.shared  # this replica's own count
        assert store.status().degraded
        assert not (await store.admit(rpm(1))).allowed
        await store.aclose()
