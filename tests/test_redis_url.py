"""The store URL → what the Redis store connects to (no connection made)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from routing.store.redis_url import RedisTarget, open_client, parse_redis_url


@pytest.mark.parametrize(
    ("url", "target"),
    [
        (
            "redis://localhost:6379/0",
            RedisTarget(mode="single", url="redis://localhost:6379/0"),
        ),
        (
            "rediss://:s3cret@cache.example:6380/2?ssl_cert_reqs=none&socket_timeout=0.25",
            RedisTarget(
                mode="single",
                url="rediss://:s3cret@cache.example:6380/2?ssl_cert_reqs=none",
                socket_timeout=0.25,
            ),
        ),
        (
            "redis+cluster://10.0.0.1:7000,10.0.0.2:7001,10.0.0.3",
            RedisTarget(
                mode="cluster",
                nodes=(("10.0.0.1", 7000), ("10.0.0.2", 7001), ("10.0.0.3", 6379)),
            ),
        ),
        (
            "redis+cluster://app:p%40ss@[::1]:7000/0?socket_connect_timeout=2",
            RedisTarget(
                mode="cluster",
                nodes=(("::1", 7000),),
                username="app",
                password="p@ss",
                socket_connect_timeout=2.0,
            ),
        ),
        (
            "redis+sentinel://s1:26379,s2/mymaster",
            RedisTarget(mode="sentinel", nodes=(("s1", 26379), ("s2", 26379)), service="mymaster"),
        ),
        (
            "redis+sentinel://:pw@s1:5000/my%20master/3?health_check_interval=5",
            RedisTarget(
                mode="sentinel",
                nodes=(("s1", 5000),),
                service="my master",
                db=3,
                password="pw",
                health_check_interval=5,
            ),
        ),
    ],
)
def test_parses(url: str, target: RedisTarget) -> None:
    assert parse_redis_url(url) == target


def test_short_timeouts_by_default() -> None:
    target = parse_redis_url("redis://localhost")
    assert (target.socket_timeout, target.socket_connect_timeout) == (0.5, 0.5)


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("memcached://localhost", "not a Redis URL"),
        ("redis+cluster://a:7000/1", "only database 0"),
        ("redis+cluster://a:7000?colour=blue", "unknown option 'colour'"),
        ("redis+cluster://a:seven", "bad Redis URL"),
        ("redis+cluster://a:7000,:7001", "no host"),
        ("redis+sentinel://s1:26379", "needs /service_name"),
        ("redis+sentinel://s1/master/0/extra", "needs /service_name"),
        ("redis+sentinel://s1/master/zero", "bad Redis URL"),
        ("redis://localhost?socket_timeout=soon", "bad Redis URL"),
        ("redis://localhost?socket_timeout=-1", "bad Redis URL"),
    ],
)
def test_refuses(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_redis_url(url)


async def test_clients_are_built_without_connecting() -> None:
    # nothing listens on port 1: building must not try
    single = open_client(parse_redis_url("redis://127.0.0.1:1/0?socket_timeout=0.3"))
    cluster = open_client(parse_redis_url("redis+cluster://127.0.0.1:1"))
    sentinel = open_client(parse_redis_url("redis+sentinel://127.0.0.1:1/main"))
    assert isinstance(single.redis, Redis)
    assert single.redis.connection_pool.connection_kwargs["socket_timeout"] == 0.3
    assert single.redis.connection_pool.connection_kwargs["retry"].get_retries() == 0
    assert isinstance(cluster.redis, RedisCluster)
    assert isinstance(sentinel.redis, Redis)
    for client in (single, cluster, sentinel):
        await client.aclose()
