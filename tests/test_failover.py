"""Redis failing over under steady traffic: a Sentinel promoting the replica after its
primary dies, and a cluster node restarting. Two gateway processes serve throughout,
for a key with a rate limit and a budget (so governance's admission runs on Redis too);
no client request may fail, and statistics, live prices and spend carry on: the budget
and the ledger hold every answer's cost exactly once afterwards. Each test
prints the error count, the longest stall a client saw and how long Redis was
unavailable (run with `-s` to read them)."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.governance.ask import nano_usd
from gateway.governance.redis_store import RedisGovernanceStore
from routing.stats import PriceOverride, deployment_id
from routing.store.redis_store import RedisStore
from tests.gateway_process import GatewayProcess
from tests.gateway_server import upstream_config
from tests.mock_upstream import MockUpstream
from tests.redis_server import DurableCluster, RedisServer, SentinelGroup
from tests.routing_setup import wait_until

# each test starts Redis servers and two gateway processes, then waits on traffic: on a
# machine loaded by several test suites at once that has taken over the default 120 s
pytestmark = pytest.mark.timeout(600)
DEPLOYMENT = deployment_id("mock", "upstream-model-id")
PRICE = PriceOverride(input_per_mtok=100.0, output_per_mtok=200.0)  # the config says 2 and 8
CHAT = {"model": "test-model", "messages": [{"role": "user", "content": "hello"}]}
CLIENTS = 4  # threads sending one request after another
KEY = "sk-failover-client"
GOVERNED = {  # a limit and a budget far above what the test sends: admission must say yes
    "keys": [
        {
            "name": "client",
            "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
            "rpm": 1_000_000,
            "budget_usd": {"daily": 1000},
        }
    ]
}


class Outcome:
    def __init__(self, sent_at: float, seconds: float, status: int, body: Any) -> None:
        self.sent_at, self.seconds, self.status, self.body = sent_at, seconds, status, body


class SteadyTraffic:
    """Requests from CLIENTS threads to the gateways in turn, until `stop()`."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(i,)) for i in range(CLIENTS)]

    def __enter__(self) -> SteadyTraffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _client(self, index: int) -> None:
        auth = {"authorization": f"Bearer {KEY}"}
        clients = [httpx.Client(base_url=url, timeout=30, headers=auth) for url in self.urls]
        turn = index
        while not self._stop.is_set():
            client = clients[turn % len(clients)]
            turn += 1
            started = time.monotonic()
            try:
                answer = client.post("/v1/chat/completions", json=CHAT)
                outcome = Outcome(
                    started, time.monotonic() - started, answer.status_code, answer.json()
                )
            except httpx.HTTPError as exc:
                outcome = Outcome(started, time.monotonic() - started, 0, repr(exc))
            self.outcomes.append(outcome)
            time.sleep(0.01)
        for client in clients:
            client.close()

    def sent_since(self, moment: float) -> int:
        return sum(o.sent_at >= moment for o in self.outcomes)

    def wait_for(self, count: int, timeout: float = 120) -> None:
        target = len(self.outcomes) + count
        wait_until(lambda: len(self.outcomes) >= target, timeout)


@pytest.fixture
def two_gateways(
    mock_upstream: MockUpstream, tmp_path: Path
) -> Iterator[Callable[[str], list[GatewayProcess]]]:
    started: list[GatewayProcess] = []

    def start(store: str) -> list[GatewayProcess]:
        config = {**upstream_config(mock_upstream.url), "store": store, "auth": GOVERNED}
        for name in ("a", "b"):
            started.append(GatewayProcess(config, tmp_path, name).start())
        return started

    yield start
    for gateway in started:
        gateway.stop()


def set_price(url: str) -> None:
    async def write() -> None:
        store = RedisStore(url)
        try:
            await store.set_price("test-model", "mock", PRICE)
        finally:
            await store.aclose()

    asyncio.run(write())


def shared_requests(url: str) -> int:
    """The deployment's requests in the store's window, as every replica reads them."""

    async def read() -> int:
        store = RedisStore(url)
        store.track([DEPLOYMENT])
        try:
            await store.sync()
            assert not store.status().degraded, store.status().detail
            return store.snapshot().stats[DEPLOYMENT].requests
        finally:
            await store.aclose()

    return asyncio.run(read())


def spent_nano_usd(url: str) -> int:
    """The key's spend today in the governance store (the UTC day; yesterday's too, in
    case the test ran over midnight)."""

    async def read() -> int:
        store = RedisGovernanceStore(url)
        today = datetime.datetime.now(datetime.UTC).date()
        days = [today - datetime.timedelta(days=1), today]
        try:
            spend = await store.spend([f"key:client:d:{day.isoformat()}" for day in days])
        finally:
            await store.aclose()
        return sum(spent for spent, _held in spend.values())

    return asyncio.run(read())


def check_requests(what: str, url: str, traffic: SteadyTraffic) -> None:
    """Every request is in the shared statistics exactly once (waited for, as above)."""
    readings: list[int] = []

    def counted() -> bool:
        readings.append(shared_requests(url))
        return readings[-1] == len(traffic.outcomes)

    try:
        wait_until(counted, timeout=90)
    finally:
        print(f"{what}: {readings[-1]} of {len(traffic.outcomes)} requests counted in Redis")


def ledger_nano_usd(url: str) -> int:
    """The key's cost in the spend ledger today (and yesterday, as above)."""

    async def read() -> int:
        store = RedisGovernanceStore(url)
        today = datetime.datetime.now(datetime.UTC).date()
        days = [(today - datetime.timedelta(days=d)).isoformat() for d in (1, 0)]
        try:
            ledger = await store.ledger(days)
        finally:
            await store.aclose()
        return sum(
            amount
            for fields in ledger.values()
            for field, amount in fields.items()
            if field.startswith("client\t") and field.endswith("\tusd")
        )

    return asyncio.run(read())


def cost_nano_usd(outcomes: list[Outcome]) -> int:
    """What the answers say they cost, each rounded up to a nano-USD as governance does."""
    return sum(nano_usd(o.body["routing_metadata"]["cost"]["usd"]) for o in outcomes)


def check_spend(what: str, url: str, traffic: SteadyTraffic) -> None:
    """Every answer's cost is in the shared budget and the ledger exactly once: the
    outboxes delivered what Redis missed, and nothing twice. Waited for: the gateways
    settle every 0.1 s and a replica retries once a second after an outage."""
    total = cost_nano_usd(traffic.outcomes)
    readings: list[tuple[int, int]] = []

    def settled() -> bool:
        readings.append((spent_nano_usd(url), ledger_nano_usd(url)))
        return readings[-1] == (total, total)

    try:
        wait_until(settled, timeout=90)
    finally:
        spent, ledger = readings[-1]
        print(
            f"{what}: spend {spent} of {total} nano-USD in the budget "
            f"({spent - total:+d}), {ledger} in the ledger ({ledger - total:+d})"
        )


def priced_by_the_override(outcome: Outcome) -> bool:
    metadata = outcome.body["routing_metadata"]
    expected = outcome.body["usage"]["prompt_tokens"] * PRICE.input_per_mtok / 1e6
    return bool(abs(metadata["cost"]["input_usd"] - expected) < 1e-12)


def all_ready(gateways: list[GatewayProcess]) -> bool:
    return all(g.get("/readyz")["status"] == "ready" for g in gateways)


def report(what: str, traffic: SteadyTraffic, outage: float) -> tuple[int, float]:
    errors = [o for o in traffic.outcomes if o.status != 200]
    stall = max(o.seconds for o in traffic.outcomes)
    print(
        f"\n{what}: {len(traffic.outcomes)} requests, {len(errors)} errors, "
        f"longest request {stall * 1000:.0f} ms, Redis unavailable for {outage:.2f} s"
    )
    return len(errors), stall


def test_a_sentinel_failover_under_traffic_loses_no_request(
    sentinel_group: SentinelGroup, two_gateways: Callable[[str], list[GatewayProcess]]
) -> None:
    set_price(sentinel_group.url)
    with sentinel_group.primary_client() as primary:
        assert primary.wait(1, 5000) == 1  # the price is on the replica too
    gateways = two_gateways(sentinel_group.url)
    with SteadyTraffic([g.url for g in gateways]) as traffic:
        traffic.wait_for(100)
        old_port = sentinel_group.primary_port()
        killed_at = time.monotonic()
        sentinel_group.kill_primary()
        sentinel_group.wait_for_new_primary(old_port)
        outage = time.monotonic() - killed_at
        wait_until(lambda: all_ready(gateways), timeout=90)  # both found the new primary
        traffic.wait_for(100)
    errors, stall = report("sentinel failover", traffic, outage)
    assert errors == 0
    # Redis is off the request path: no request waits for it (a request stuck on a dead
    # connection would wait the client's 30 s; scheduling on a loaded machine, ~1 s)
    assert stall < 10.0
    # prices carried on: every answer, before, during and after, cost the override
    assert all(priced_by_the_override(o) for o in traffic.outcomes)
    # statistics carried on, all of them: each replica's writes wait until a replica
    # of Redis acknowledged them (WAIT), and one sent twice counts once
    check_requests("sentinel failover", sentinel_group.url, traffic)
    # spend carried on, all of it: settled before the failover (a replica acknowledged
    # it), during it (in the outbox) and after, each once
    check_spend("sentinel failover", sentinel_group.url, traffic)


def test_a_cluster_node_restart_under_traffic_loses_nothing(
    durable_cluster: DurableCluster, two_gateways: Callable[[str], list[GatewayProcess]]
) -> None:
    set_price(durable_cluster.url)
    gateways = two_gateways(durable_cluster.url)
    # the node that holds this deployment's statistics is the one restarted
    node = durable_cluster.node_of(f"switchboard:{{{DEPLOYMENT}}}:window")
    with SteadyTraffic([g.url for g in gateways]) as traffic:
        traffic.wait_for(100)
        down_at = time.monotonic()
        durable_cluster.restart(node)
        outage = time.monotonic() - down_at
        wait_until(lambda: all_ready(gateways), timeout=90)
        traffic.wait_for(100)
    errors, stall = report("cluster node restart", traffic, outage)
    assert errors == 0
    assert stall < 10.0
    assert all(priced_by_the_override(o) for o in traffic.outcomes)
    # the node kept its data (append-only file) and the replicas' outboxes delivered
    # what it missed: every request is counted, once
    check_requests("cluster node restart", durable_cluster.url, traffic)
    # every request's cost was settled in the budget and the ledger, once
    check_spend("cluster node restart", durable_cluster.url, traffic)


@pytest.fixture
def durable_redis() -> Iterator[RedisServer]:
    """A standalone Redis that keeps its data across a restart (append-only file)."""
    with RedisServer("--appendonly", "yes", "--appendfsync", "always") as server:
        yield server


def test_a_standalone_redis_restart_under_traffic_loses_no_spend(
    durable_redis: RedisServer, two_gateways: Callable[[str], list[GatewayProcess]]
) -> None:
    """Redis restarted (an upgrade, a crash) with its append-only file: it comes back with
    what it had, and the replicas deliver what it missed while it was down."""
    server = durable_redis
    gateways = two_gateways(server.url)
    with SteadyTraffic([g.url for g in gateways]) as traffic:
        traffic.wait_for(100)
        down_at = time.monotonic()
        server.stop()
        # both replicas notice, and serve on their own meanwhile
        wait_until(lambda: all(g.get("/readyz")["status"] == "degraded" for g in gateways), 90)
        traffic.wait_for(50)
        server.start()
        outage = time.monotonic() - down_at
        wait_until(lambda: all_ready(gateways), timeout=90)
        traffic.wait_for(100)
    errors, stall = report("standalone restart", traffic, outage)
    assert errors == 0
    assert stall < 10.0
    check_requests("standalone restart", server.url, traffic)
    check_spend("standalone restart", server.url, traffic)
