"""From a `store:` URL to a redis-py asyncio client, without connecting.

- `redis://[user:password@]host[:port][/db]`, `rediss://…` (TLS), as redis-py reads them;
- `redis+cluster://[user:password@]host:port[,host:port…][/]`: startup nodes of a cluster;
- `redis+sentinel://[user:password@]host:port[,host:port…]/service[/db]`: the sentinels and
  the name of the master they monitor (the credentials are the master's).

Query options for every scheme: `socket_timeout`, `socket_connect_timeout` (seconds,
0.5 by default: a slow Redis must not stall the metrics loop) and `health_check_interval`
(seconds). redis:// and rediss:// pass any other option through to redis-py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal, TypeAlias
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import msgspec
from msgspec import Meta
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

Mode = Literal["single", "cluster", "sentinel"]
AnyRedis: TypeAlias = "Redis | RedisCluster"
Seconds = Annotated[float, Meta(ge=0)]

_SINGLE_SCHEMES = ("redis", "rediss", "unix")
_DEFAULT_PORTS = {"cluster": 6379, "sentinel": 26379}
_OPTIONS = ("socket_timeout", "socket_connect_timeout", "health_check_interval")


class RedisTarget(msgspec.Struct, frozen=True, kw_only=True):
    """What a store URL names."""

    mode: Mode
    url: str = ""  # single: what redis-py's from_url gets, our options taken out
    nodes: tuple[tuple[str, int], ...] = ()  # cluster: startup nodes; sentinel: sentinels
    service: str = ""  # sentinel: the master's name
    db: Annotated[int, Meta(ge=0)] = 0
    username: str | None = None
    password: str | None = None
    socket_timeout: Seconds = 0.5
    socket_connect_timeout: Seconds = 0.5
    health_check_interval: Annotated[int, Meta(ge=0)] = 15


def parse_redis_url(url: str) -> RedisTarget:
    """Raises ValueError on a URL this store cannot use."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    query = parse_qsl(parts.query, keep_blank_values=True)
    fields: dict[str, object] = {k: v for k, v in query if k in _OPTIONS}
    if scheme in _SINGLE_SCHEMES:
        passed_on = urlencode([(k, v) for k, v in query if k not in _OPTIONS])
        fields.update(mode="single", url=urlunsplit(parts._replace(query=passed_on)))
        return _target(fields)
    if scheme not in ("redis+cluster", "redis+sentinel"):
        raise ValueError(f"not a Redis URL: {url.partition(':')[0]}://")
    unknown = sorted({k for k, _ in query} - set(_OPTIONS))
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} in a Redis URL")
    mode = "cluster" if scheme == "redis+cluster" else "sentinel"
    userinfo, _, hosts = parts.netloc.rpartition("@")
    fields["username"], fields["password"] = _credentials(userinfo)
    fields["nodes"] = [_host_port(item, _DEFAULT_PORTS[mode]) for item in hosts.split(",")]
    fields["mode"] = mode
    path = [unquote(p) for p in parts.path.split("/") if p]
    if mode == "cluster":
        if path not in ([], ["0"]):
            raise ValueError("redis+cluster:// has only database 0")
    elif len(path) in (1, 2):
        fields["service"] = path[0]
        fields["db"] = path[1] if len(path) == 2 else 0
    else:
        raise ValueError("redis+sentinel:// needs /service_name[/db]")
    return _target(fields)


def _target(fields: dict[str, object]) -> RedisTarget:
    try:  # not strict: the numbers arrive as text
        return msgspec.convert(fields, RedisTarget, strict=False)
    except msgspec.ValidationError as exc:
        raise ValueError(f"bad Redis URL: {exc}") from None


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    if not userinfo:
        return None, None
    user, colon, password = userinfo.partition(":")
    return unquote(user) or None, unquote(password) if colon else None


def _host_port(text: str, default_port: int) -> tuple[str, str | int]:
    if text.startswith("["):  # [IPv6]:port
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = text.partition(":")
    if not host:
        raise ValueError(f"no host in {text!r}")
    return host, port or default_port


class RedisClient:
    """The client a target names, and what must be closed with it."""

    def __init__(self, redis: AnyRedis, sentinels: Sequence[Redis] = ()) -> None:
        self.redis = redis
        self._sentinels = sentinels

    async def aclose(self) -> None:
        await self.redis.aclose()
        for sentinel in self._sentinels:
            await sentinel.aclose()


def open_client(target: RedisTarget) -> RedisClient:
    """A client that connects on its first command. It does not retry: the metrics loop
    tries again on its next cycle, and a failed cycle must end fast."""
    if target.mode == "single":
        return RedisClient(
            Redis.from_url(
                target.url,
                socket_timeout=target.socket_timeout,
                socket_connect_timeout=target.socket_connect_timeout,
                health_check_interval=target.health_check_interval,
                retry_on_timeout=False,
                retry=Retry(NoBackoff(), 0),
            )
        )
    if target.mode == "cluster":
        cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
            username=target.username,
            password=target.password,
            socket_timeout=target.socket_timeout,
            socket_connect_timeout=target.socket_connect_timeout,
            health_check_interval=target.health_check_interval,
            # one retry: the cluster client re-reads the topology only before a retry
            retry=Retry(NoBackoff(), 1),
        )
        return RedisClient(cluster)
    sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        list(target.nodes),
        sentinel_kwargs={
            "socket_timeout": target.socket_timeout,
            "socket_connect_timeout": target.socket_connect_timeout,
            "retry": Retry(NoBackoff(), 0),
        },
    )
    master = sentinel.master_for(
        target.service,
        db=target.db,
        username=target.username,
        password=target.password,
        socket_timeout=target.socket_timeout,
        socket_connect_timeout=target.socket_connect_timeout,
        health_check_interval=target.health_check_interval,
        retry_on_timeout=False,
        retry=Retry(NoBackoff(), 0),
    )
    return RedisClient(master, sentinel.sentinels)
