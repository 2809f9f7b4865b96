"""Governance across replicas: two gateway processes on one real Redis share rate limits,
budgets, keys and idempotency exactly, as one process does on `memory://`; Redis going
away costs no request (each replica limits alone, `/readyz` says degraded). The budget
and rate-limit tests run on standalone Redis, a 3-master cluster and Sentinel."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import openai
import pytest

from gateway.cli import main
from gateway.governance.redis_store import RedisGovernanceStore
from tests.gateway_process import GatewayProcess
from tests.mock_upstream import JSONReply, MockUpstream, completion, make_usage
from tests.redis_server import RedisClusterServers, RedisSentinelServers, RedisServer
from tests.routing_setup import HELLO, wait_until

# each test starts Redis servers and two gateway processes, then waits on traffic: on a
# machine loaded by several test suites at once that has taken over the default 120 s
pytestmark = pytest.mark.timeout(600)
ADMIN = "sk-replicas-admin"
BUDGET_KEY = "sb-replicas-budget-000001"
RPM_KEY = "sb-replicas-rpm-000000002"
IDEM_KEY = "sb-replicas-idem-00000003"
OUTPUT_PRICE = 8.0  # USD per million output tokens; input is free
MAX_TOKENS = 100
COST = MAX_TOKENS * OUTPUT_PRICE / 1e6  # each answer uses its whole max_tokens: $0.0008
FITS = 20
BUDGET = FITS * COST + COST / 2  # room for 20 requests and half of another


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


Replicas = tuple[GatewayProcess, GatewayProcess, MockUpstream, RedisServer]


def replicas_config(store: str, upstream: MockUpstream) -> dict[str, Any]:
    # timeouts a loaded machine's event loop cannot trip while 200 requests arrive
    separator = "&" if "?" in store else "?"
    return {
        "store": store + separator + "socket_timeout=5&socket_connect_timeout=5",
        "auth": {
            "keys": [
                {
                    "name": "budget",
                    "key_sha256": digest(BUDGET_KEY),
                    "budget_usd": {"daily": BUDGET},
                },
                {"name": "rpm", "key_sha256": digest(RPM_KEY), "rpm": 10},
                {"name": "idem", "key_sha256": digest(IDEM_KEY)},
            ]
        },
        "admin": {"key_sha256": digest(ADMIN)},
        "governance": {"refresh": 0.2},
        "providers": {"mock": {"kind": "openai", "base_url": upstream.url, "api_key": "sk-up"}},
        "models": {
            "test-model": {
                "deployments": [
                    {
                        "provider": "mock",
                        "model": "m",
                        "input_per_mtok": 0,
                        "output_per_mtok": OUTPUT_PRICE,
                    }
                ]
            }
        },
    }


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    folder = tmp_path_factory.mktemp("replicas")
    upstream = MockUpstream().start()
    with RedisServer() as server:
        config = replicas_config(server.url, upstream)
        first = GatewayProcess(config, folder, "a").start()
        second = GatewayProcess(config, folder, "b").start()
        try:
            yield first, second, upstream, server
        finally:
            first.stop()
            second.stop()
            upstream.stop()


# (first gateway, second gateway, their upstream, the store's URL)
Shared = tuple[GatewayProcess, GatewayProcess, MockUpstream, str]


@pytest.fixture(scope="module", params=["redis", "cluster", "sentinel"])
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shared]:
    """Two gateway processes on each kind of Redis: standalone (the module's `replicas`),
    a 3-master cluster and a sentinel-watched primary."""
    if request.param == "redis":
        first, second, upstream, server = request.getfixturevalue("replicas")
        yield first, second, upstream, server.url
        return
    servers: RedisClusterServers | RedisSentinelServers = (
        RedisClusterServers() if request.param == "cluster" else RedisSentinelServers()
    )
    folder = tmp_path_factory.mktemp(f"replicas-{request.param}")
    upstream = MockUpstream().start()
    try:
        servers.start()
        config = replicas_config(servers.url, upstream)
        first = GatewayProcess(config, folder, "a").start()
        try:
            second = GatewayProcess(config, folder, "b").start()
            try:
                yield first, second, upstream, servers.url
            finally:
                second.stop()
        finally:
            first.stop()
    finally:
        upstream.stop()
        servers.close()


@pytest.fixture
def shared_mock(shared: Shared) -> MockUpstream:
    return answering_max_tokens(shared[2])


def answering_max_tokens(upstream: MockUpstream) -> MockUpstream:
    upstream.reset()
    usage = make_usage(prompt_tokens=12, completion_tokens=MAX_TOKENS)
    upstream.set_default(JSONReply(completion(usage=usage), delay=0.3))
    return upstream


def shared_spent(url: str, name: str) -> int:
    """A key's settled spend today, read as a replica reads it (any kind of Redis)."""

    async def read() -> int:
        store = RedisGovernanceStore(url)
        bucket = f"key:{name}:d:{datetime.now(UTC).strftime('%Y-%m-%d')}"
        try:
            return (await store.spend([bucket]))[bucket][0]
        finally:
            await store.aclose()

    return asyncio.run(read())


@pytest.fixture
def mock(replicas: Replicas) -> MockUpstream:
    return answering_max_tokens(replicas[2])


async def _burst(urls: list[str], key: str, count: int) -> list[httpx.Response]:
    body = {"model": "test-model", "messages": HELLO, "max_tokens": MAX_TOKENS}
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        return list(
            await asyncio.gather(
                *(
                    client.post(
                        f"{urls[i % len(urls)]}/v1/chat/completions",
                        json=body,
                        headers={"authorization": f"Bearer {key}"},
                    )
                    for i in range(count)
                )
            )
        )


def test_a_budget_holds_under_200_concurrent_requests_from_two_replicas(
    shared: Shared, shared_mock: MockUpstream
) -> None:
    first, second, mock, url = shared
    answers = asyncio.run(_burst([first.url, second.url], BUDGET_KEY, 200))
    statuses = [a.status_code for a in answers]
    admitted = statuses.count(200)
    assert statuses.count(429) == 200 - admitted, set(statuses)
    assert all(
        a.json()["error"]["code"] == "budget_exceeded" for a in answers if a.status_code == 429
    )
    # the most that fits is 20; each admitted request reserved exactly what it cost
    assert FITS - 1 <= admitted <= FITS
    assert len(mock.requests) == admitted
    wait_until(lambda: shared_spent(url, "budget") == round(admitted * COST * 1e9), 30)
    assert shared_spent(url, "budget") <= BUDGET * 1e9


def test_requests_per_minute_across_replicas(shared: Shared, shared_mock: MockUpstream) -> None:
    first, second, _, _ = shared
    clients = [
        openai.OpenAI(base_url=f"{g.url}/v1", api_key=RPM_KEY, max_retries=0, timeout=10)
        for g in (first, second)
    ]
    served = refused = 0
    for i in range(16):
        try:
            clients[i % 2].chat.completions.create(model="test-model", messages=HELLO)  # type: ignore[arg-type]
            served += 1
        except openai.RateLimitError as error:
            refused += 1
            headers = error.response.headers
            assert error.code == "rate_limit_exceeded"
            assert headers["x-ratelimit-limit-requests"] == "10"
            assert headers["x-ratelimit-remaining-requests"] == "0"
            assert int(headers["retry-after"]) >= 1
    assert (served, refused) == (10, 6)


def test_a_revoked_key_is_refused_by_every_replica(
    replicas: Replicas, mock: MockUpstream, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, _, _ = replicas
    created = httpx.post(
        f"{first.url}/v1/admin/keys",
        json={"name": "short-lived"},
        headers={"authorization": f"Bearer {ADMIN}"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    plain = created.json()["key"]

    def status_on(gateway: GatewayProcess) -> int:
        response = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": "test-model", "messages": HELLO},
            headers={"authorization": f"Bearer {plain}"},
            timeout=10,
        )
        return response.status_code

    wait_until(lambda: status_on(second) == 200, 5)  # within one refresh (0.2 s)
    # revoked straight in the store, as an operator would from another machine
    assert main(["keys", "revoke", "short-lived", "--config", str(first.config_path)]) == 0
    started = time.monotonic()
    wait_until(lambda: status_on(first) == 401 and status_on(second) == 401, 5)
    assert time.monotonic() - started < 2.0


def test_idempotency_across_replicas(replicas: Replicas, mock: MockUpstream) -> None:
    first, second, _, _ = replicas
    headers = {"authorization": f"Bearer {IDEM_KEY}", "idempotency-key": "order-42"}
    body = {"model": "test-model", "messages": HELLO}
    original = httpx.post(
        f"{first.url}/v1/chat/completions", json=body, headers=headers, timeout=10
    )
    assert original.status_code == 200

    def replayed() -> httpx.Response:
        return httpx.post(
            f"{second.url}/v1/chat/completions", json=body, headers=headers, timeout=10
        )

    wait_until(lambda: replayed().status_code == 200, 5)
    replay = replayed()
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == original.content
    other = httpx.post(
        f"{second.url}/v1/chat/completions",
        json={**body, "temperature": 0},
        headers=headers,
        timeout=10,
    )
    assert other.status_code == 409
    assert len(mock.requests) == 1


def test_redis_down_limits_locally_and_never_fails(replicas: Replicas, mock: MockUpstream) -> None:
    first, second, _, server = replicas
    server.stop()
    try:
        for gateway in (first, second):
            answer = httpx.post(
                f"{gateway.url}/v1/chat/completions",
                json={"model": "test-model", "messages": HELLO},
                headers={"authorization": f"Bearer {IDEM_KEY}"},
                timeout=10,
            )
            assert answer.status_code == 200, answer.text
        wait_until(lambda: first.get("/readyz")["status"] == "degraded", 10)
        assert first.get("/readyz")["detail"]  # says why
    finally:
        server.restart()
    wait_until(lambda: all(g.get("/readyz")["status"] == "ready" for g in (first, second)), 15)
