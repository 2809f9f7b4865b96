"""A vendor's limits are shared by replicas through Redis: two gateways, one
redis-server. A 429 one replica got backs the deployment off for the other, and an
`rpm` is counted over both. Waits are on conditions (what the other replica's
scoreboard shows), never on the clock.

The two gateways run in this process (each its own app, store and router, on its own
socket and event loop: they share nothing but Redis), as a process each takes tens of
seconds to start on a loaded machine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway_server import GatewayServer, metadata_of
from tests.mock_upstream import ErrorReply, MockUpstream
from tests.redis_server import RedisServer
from tests.routing_setup import HELLO, routed_config, wait_until

Replicas = tuple[GatewayServer, GatewayServer, dict[str, MockUpstream]]


@pytest.fixture(scope="module")
def replicas() -> Iterator[Replicas]:
    """Model `a`: `limited` (cheapest) then `spare`; model `b`: `counted` (cheapest, 2
    requests a minute) then `spare`. Cost strategy, so the cheapest is always first."""
    names = ("limited", "counted", "spare")
    upstreams = {name: MockUpstream().start() for name in names}
    with RedisServer() as redis_server:
        config = routed_config(
            {"a": [("limited", 0.1), ("spare", 1.0)], "b": [("counted", 0.1), ("spare", 1.0)]},
            {name: upstream.url for name, upstream in upstreams.items()},
            store=redis_server.url,
            metrics={"flush": 0.05, "refresh": 0.1},
        )
        config["models"]["b"]["deployments"][0]["rpm"] = 2
        first = GatewayServer(config).start()
        second = GatewayServer(config).start()
        try:
            yield first, second, upstreams
        finally:
            first.stop()
            second.stop()
            for upstream in upstreams.values():
                upstream.stop()


def board(gateway: GatewayServer, model: str) -> dict[str, dict[str, Any]]:
    rows = httpx.get(f"{gateway.url}/v1/providers", timeout=10).json()["data"]
    return {row["provider"]: row for row in rows if row["model"] == model}


def ask(gateway: GatewayServer, model: str) -> dict[str, Any]:
    answer = gateway.sdk().chat.completions.create(model=model, messages=HELLO)
    return metadata_of(answer)


def test_a_429_backs_the_deployment_off_for_every_replica(replicas: Replicas) -> None:
    a, b, upstreams = replicas
    upstreams["limited"].enqueue(
        ErrorReply(429, "Rate limit reached", type="requests", headers={"retry-after": "60"})
    )
    first = ask(a, "a")
    assert first["provider"] == "spare"  # 60 s is over the retry cap: it fell back at once
    assert [x["status"] for x in first["attempts"]] == [429]
    # B learns the cooldown from Redis, with no request of its own to `limited`
    wait_until(lambda: board(b, "a")["limited"]["health"] == "rate_limited", timeout=15.0)
    assert board(b, "a")["limited"]["retry_at"] is not None
    assert ask(b, "a")["provider"] == "spare"
    assert len(upstreams["limited"].requests) == 1  # nobody tried it again


def test_rpm_is_counted_over_every_replica(replicas: Replicas) -> None:
    a, b, upstreams = replicas
    assert ask(a, "b")["provider"] == "counted"
    assert ask(b, "b")["provider"] == "counted"

    def counted_everywhere() -> bool:
        return all(board(g, "b")["counted"]["stats"]["minute_requests"] == 2 for g in (a, b))

    wait_until(counted_everywhere, timeout=15.0)
    # both replicas now see the 2 a minute used: neither sends a third
    assert [ask(g, "b")["provider"] for g in (a, b, a)] == ["spare"] * 3
    assert len(upstreams["counted"].requests) == 2
