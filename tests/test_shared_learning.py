"""Replicas learn from each other through Redis: two gateway processes, one store.
And the store going away costs no request: routing carries on with local statistics."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.gateway_process import GatewayProcess
from tests.gateway_server import GatewayServer, metadata_of
from tests.mock_upstream import JSONReply, MockUpstream, completion
from tests.redis_server import RedisServer
from tests.routing_setup import HELLO, routed_config, wait_until


def providers_of(gateway: GatewayProcess) -> dict[str, dict[str, Any]]:
    return {row["provider"]: row for row in gateway.get("/v1/providers")["data"]}


def simulated_on(store: str, **simulated: Any) -> dict[str, Any]:
    """Model `m` on one in-process provider (deployment `sim/s1`), with a fast store cycle."""
    return {
        "auth": "none",
        "store": store,
        "providers": {"sim": {"kind": "simulated", "completion_tokens": 4, **simulated}},
        "models": {
            "m": {
                "deployments": [
                    {"provider": "sim", "model": "s1", "input_per_mtok": 1, "output_per_mtok": 1}
                ]
            }
        },
        "routing": {"metrics": {"flush": 0.05, "refresh": 0.1}},
    }


@pytest.fixture(scope="module")
def redis_store() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


Replicas = tuple[GatewayProcess, GatewayProcess, dict[str, MockUpstream]]


@pytest.fixture(scope="module")
def replicas(
    redis_store: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    """Two gateway processes on one Redis, serving `m` from two mock upstreams (processes
    start slowly: the module shares them; each test resets the mocks)."""
    upstreams = {"quick": MockUpstream().start(), "steady": MockUpstream().start()}
    config = routed_config(
        {"m": [("quick", 1.0), ("steady", 1.0)]},
        {name: upstream.url for name, upstream in upstreams.items()},
        strategy="latency",
        store=redis_store.url,
        metrics={"flush": 0.1, "refresh": 0.5},  # the defaults' order of magnitude
    )
    folder = tmp_path_factory.mktemp("replicas")
    first = GatewayProcess(config, folder, "a").start()
    second = GatewayProcess(config, folder, "b").start()
    try:
        yield first, second, upstreams
    finally:
        first.stop()
        second.stop()
        for upstream in upstreams.values():
            upstream.stop()


@pytest.fixture
def fresh(replicas: Replicas) -> Replicas:
    for upstream in replicas[2].values():
        upstream.reset()
    return replicas


def test_a_replica_routes_away_from_what_another_found_slow(fresh: Replicas) -> None:
    a, b, upstreams = fresh
    upstreams["quick"].set_default(JSONReply(completion(), delay=0.3))  # it turned slow

    client = a.sdk()
    for provider in ("quick", "steady"):  # traffic through A only (pinned by slug)
        for _ in range(3):
            client.chat.completions.create(model=f"{provider}/m", messages=HELLO)
    sent_to_quick = len(upstreams["quick"].requests)

    def learned() -> bool:
        rows = providers_of(b)
        return all(rows[name]["stats"]["requests"] == 3 for name in ("quick", "steady"))

    # B learned it from the store (it served none of these). How fast replicas learn is
    # asserted on routing's simulator, where no machine's speed can race it.
    wait_until(learned, timeout=30.0)
    assert providers_of(b)["quick"]["stats"]["latency_ms"] > 250
    answer = b.sdk().chat.completions.create(model="m", messages=HELLO)
    assert metadata_of(answer)["provider"] == "steady"  # B's first request avoids it
    assert len(upstreams["quick"].requests) == sent_to_quick  # B never tried it


def test_a_live_price_reaches_every_replica(fresh: Replicas) -> None:
    a, b, _ = fresh

    def cheapest(gateway: GatewayProcess) -> str:
        answer = gateway.sdk().chat.completions.create(
            model="m", messages=HELLO, extra_body={"routing": {"strategy": "cost"}}
        )
        return str(metadata_of(answer)["provider"])

    assert cheapest(a) == cheapest(b) == "quick"  # equal prices: the config's order
    command = [sys.executable, "-m", "gateway", "prices", "set", "m", "steady"]
    changed = subprocess.run(
        [*command, "--input", "0.1", "--output", "0.2", "--config", str(a.config_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert changed.returncode == 0, changed.stderr

    def overridden(gateway: GatewayProcess) -> Callable[[], bool]:
        return lambda: providers_of(gateway)["steady"]["price_source"] == "store"

    for gateway in (a, b):  # each within a refresh or two
        wait_until(overridden(gateway), timeout=30.0)
    assert cheapest(a) == cheapest(b) == "steady"
    row = providers_of(a)["steady"]
    assert (row["input_per_mtok"], row["output_per_mtok"]) == (0.1, 0.2)


def test_redis_killed_mid_traffic_loses_no_request(
    own_redis_server: RedisServer, gateway_factory: Callable[[dict[str, Any]], GatewayServer]
) -> None:
    """Every step waits on a condition, never on a duration, so the machine's speed
    cannot decide the outcome; the bounds are far above what any step takes."""
    gateway = gateway_factory(simulated_on(own_redis_server.url, ttft_ms=5))
    statuses: list[int] = []
    running = threading.Event()
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                if not running.wait(timeout=0.05):
                    continue
                response = client.post(
                    f"{gateway.url}/v1/chat/completions", json={"model": "m", "messages": HELLO}
                )
                statuses.append(response.status_code)

    def readiness() -> str:
        return str(httpx.get(f"{gateway.url}/readyz", timeout=5).json()["status"])

    def recorded() -> float:
        """Requests Redis has counted for the deployment."""
        with own_redis_server.client() as client:
            window = client.hgetall("switchboard:{sim/s1}:window")
        return sum(float(v) for k, v in window.items() if k.decode().endswith(":n"))

    workers = [threading.Thread(target=traffic) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        running.set()
        wait_until(lambda: recorded() >= 20, timeout=30.0)
        before = len(statuses)  # answered before the kill (some perhaps not yet flushed)
        own_redis_server.stop()  # killed, mid-traffic
        wait_until(lambda: readiness() == "degraded", timeout=30.0)
        wait_until(lambda: len(statuses) >= before + 40, timeout=30.0)
        running.clear()  # quiet while Redis comes back: what it then counts is the outbox
        time.sleep(0.1)  # the requests in flight when traffic paused are answered
        during = len(statuses)
        own_redis_server.start()  # back, empty, on the same port
        wait_until(lambda: readiness() == "ready", timeout=30.0)
        # every outcome since the kill was kept and reaches the new, empty Redis
        wait_until(lambda: recorded() >= during - before, timeout=30.0)
        running.set()  # and traffic goes on as before
        wait_until(lambda: len(statuses) >= during + 20, timeout=30.0)
    finally:
        stop.set()
        running.set()
        for worker in workers:
            worker.join(timeout=10)
    assert statuses and set(statuses) == {200}, set(statuses)


def test_a_slow_redis_delays_no_request(
    own_redis_server: RedisServer, gateway_factory: Callable[[dict[str, Any]], GatewayServer]
) -> None:
    """Redis answering nothing (CLIENT PAUSE) while requests keep coming: each is served
    without waiting for it, and the store says degraded until Redis answers again.

    A request that waited for Redis would take at least its socket timeout (0.5 s); one
    that does not takes milliseconds. The median over the pause tells them apart however
    loaded the machine is, where the slowest single request would race the scheduler."""
    gateway = gateway_factory(simulated_on(own_redis_server.url))
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        assert client.get("/readyz").json()["status"] == "ready"
        with own_redis_server.client() as admin:
            admin.execute_command("CLIENT", "PAUSE", "20000", "ALL")
        paused_at = time.monotonic()
        took: list[float] = []
        states: set[str] = set()
        while len(took) < 10 or "degraded" not in states:
            assert time.monotonic() - paused_at < 15.0, (took, states)  # Redis still paused
            started = time.monotonic()
            response = client.post("/v1/chat/completions", json={"model": "m", "messages": HELLO})
            took.append(time.monotonic() - started)
            assert response.status_code == 200, response.text
            states.add(client.get("/readyz").json()["status"])
        took.sort()
        assert took[len(took) // 2] < 0.25, took
        with own_redis_server.client() as admin:
            admin.execute_command("CLIENT", "UNPAUSE")
        wait_until(lambda: client.get("/readyz").json()["status"] == "ready", timeout=30.0)
