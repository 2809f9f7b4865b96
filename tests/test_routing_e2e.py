"""The routing engine end to end: the real gateway, mock upstreams on loopback, the
official SDK as the client. Strategies, fallbacks, retries, cooldowns, the circuit
breaker and `models[]`, observed from both sides of the wire."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.gateway_server import GatewayServer, metadata_of
from tests.mock_upstream import ErrorReply, HangReply, JSONReply, MockUpstream, completion
from tests.routing_setup import HELLO, MovableClock, routed_config, wait_until

StartGateway = Callable[[dict[str, Any]], GatewayServer]
StartClockedGateway = Callable[[dict[str, Any], MovableClock], GatewayServer]
MakeUpstream = Callable[[], MockUpstream]


@pytest.fixture
def clocked_gateway() -> Iterator[StartClockedGateway]:
    """Gateways whose routing runs on a clock the test moves on."""
    started: list[GatewayServer] = []

    def start(config: dict[str, Any], clock: MovableClock) -> GatewayServer:
        server = GatewayServer(config, clock=clock).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def mocks(make: MakeUpstream, *names: str) -> dict[str, MockUpstream]:
    return {name: make() for name in names}


def urls(upstreams: dict[str, MockUpstream]) -> dict[str, str]:
    return {name: upstream.url for name, upstream in upstreams.items()}


def ask(client: openai.OpenAI, model: str = "m", **extra: Any) -> dict[str, Any]:
    answer = client.chat.completions.create(model=model, messages=HELLO, extra_body=extra or None)
    return metadata_of(answer)


def served_by(upstreams: dict[str, MockUpstream]) -> dict[str, int]:
    return {name: len(upstream.requests) for name, upstream in upstreams.items()}


def scoreboard(gateway: GatewayServer) -> dict[str, dict[str, Any]]:
    rows = httpx.get(f"{gateway.url}/v1/providers", timeout=5).json()["data"]
    return {row["provider"]: row for row in rows}


# --------------------------------------------------------------------------- strategies


def test_cost_sends_everything_to_the_cheapest(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstreams = mocks(mock_upstream_factory, "pricey", "cheap", "middle")
    config = routed_config(
        {"m": [("pricey", 3.0), ("cheap", 0.5), ("middle", 1.0)]}, urls(upstreams)
    )
    client = gateway_factory(config).sdk()
    metadata = [ask(client) for _ in range(8)]
    assert {m["provider"] for m in metadata} == {"cheap"}
    assert {m["routing_strategy"] for m in metadata} == {"cost"}
    assert served_by(upstreams) == {"pricey": 0, "cheap": 8, "middle": 0}
    # per request, `:nitro`/`provider.sort` still override the default strategy
    assert ask(client, provider={"sort": "latency"})["routing_strategy"] == "latency"


def test_latency_moves_off_a_slow_provider(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    """The wiring over real sockets: outcomes reach the store, its snapshot the planner.
    How fast routing reacts and how it probes are timings: the simulator asserts them
    (tests/test_simulator.py), in virtual time."""
    upstreams = mocks(mock_upstream_factory, "first", "second")
    config = routed_config(
        {"m": [("first", 1.0), ("second", 1.0)]}, urls(upstreams), strategy="latency"
    )
    gateway = gateway_factory(config)
    client = gateway.sdk()
    upstreams["first"].set_default(JSONReply(completion(), delay=0.25))  # it turned slow
    for provider in ("first", "second"):  # measure both (pinned by slug)
        ask(client, f"{provider}/m")

    def measured() -> bool:
        board = scoreboard(gateway)
        return all(board[name]["stats"]["latency_ms"] is not None for name in ("first", "second"))

    wait_until(measured, timeout=10.0)
    assert scoreboard(gateway)["first"]["stats"]["latency_ms"] >= 250
    picked = Counter(ask(client)["provider"] for _ in range(10))
    assert picked == {"second": 10}, picked  # the config's first choice is avoided


# --------------------------------------------------------------------------- fallbacks


def test_a_503_falls_back_and_attempts_list_it(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstreams = mocks(mock_upstream_factory, "down", "up")
    upstreams["down"].set_default(ErrorReply(503, "overloaded", type="server_error"))
    config = routed_config(
        {"m": [("down", 0.1), ("up", 1.0)]},
        urls(upstreams),
        retries={"attempts": 2, "backoff_initial": 0.01, "backoff_max": 0.02},
    )
    metadata = ask(gateway_factory(config).sdk())
    assert metadata["provider"] == "up"
    attempts = metadata["attempts"]
    assert [(a["provider"], a["model"], a["status"], a["error"]) for a in attempts] == [
        ("down", "m", 503, "upstream_unavailable"),
        ("down", "m", 503, "upstream_unavailable"),  # retried once, then fell back
    ]
    assert all(a["latency_ms"] >= 0 for a in attempts)
    assert served_by(upstreams) == {"down": 2, "up": 1}


def test_a_transient_failure_is_retried_on_the_same_deployment(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstreams = mocks(mock_upstream_factory, "flaky", "other")
    upstreams["flaky"].enqueue(ErrorReply(502, "bad gateway", type="server_error"))
    config = routed_config(
        {"m": [("flaky", 0.1), ("other", 1.0)]},
        urls(upstreams),
        retries={"attempts": 3, "backoff_initial": 0.01, "backoff_max": 0.02},
    )
    metadata = ask(gateway_factory(config).sdk())
    assert metadata["provider"] == "flaky"
    assert [a["status"] for a in metadata["attempts"]] == [502]
    assert served_by(upstreams) == {"flaky": 2, "other": 0}


def test_stream_falls_back_before_the_first_byte(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstreams = mocks(mock_upstream_factory, "down", "up")
    upstreams["down"].set_default(ErrorReply(500, "boom", type="server_error"))
    client = gateway_factory(
        routed_config({"m": [("down", 0.1), ("up", 1.0)]}, urls(upstreams))
    ).sdk()
    with client.chat.completions.with_streaming_response.create(
        model="m", messages=HELLO, stream=True
    ) as raw:
        assert raw.headers["x-switchboard-provider"] == "up"
        chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from mock upstream"
    metadata = (chunks[-1].model_extra or {})["routing_metadata"]
    assert [(a["provider"], a["status"]) for a in metadata["attempts"]] == [("down", 500)]


def test_a_request_error_is_returned_at_once(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstreams = mocks(mock_upstream_factory, "first", "second")
    upstreams["first"].set_default(ErrorReply(400, "Invalid 'temperature'", param="temperature"))
    client = gateway_factory(
        routed_config({"m": [("first", 0.1), ("second", 1.0)]}, urls(upstreams))
    ).sdk()
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client)
    assert caught.value.param == "temperature"
    assert served_by(upstreams) == {"first": 1, "second": 0}  # the next would refuse it too


def test_a_refused_provider_key_falls_back_and_marks_the_deployment_unhealthy(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstreams = mocks(mock_upstream_factory, "badkey", "good")
    upstreams["badkey"].set_default(ErrorReply(401, "Incorrect API key", code="invalid_api_key"))
    gateway = gateway_factory(
        routed_config({"m": [("badkey", 0.1), ("good", 1.0)]}, urls(upstreams))
    )
    client = gateway.sdk()
    first = ask(client)
    assert first["provider"] == "good"
    assert [(a["provider"], a["status"], a["error"]) for a in first["attempts"]] == [
        ("badkey", 401, "upstream_auth_failed")
    ]
    assert scoreboard(gateway)["badkey"]["health"] == "circuit_open"
    for _ in range(3):
        assert ask(client)["attempts"] == []  # not tried again while its circuit is open
    assert served_by(upstreams) == {"badkey": 1, "good": 4}


def test_models_list_moves_to_the_next_model_when_every_deployment_fails(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstreams = mocks(mock_upstream_factory, "a1", "a2", "b1")
    for name in ("a1", "a2"):
        upstreams[name].set_default(ErrorReply(503, "overloaded", type="server_error"))
    config = routed_config(
        {"first": [("a1", 0.1), ("a2", 0.2)], "second": [("b1", 0.05)]}, urls(upstreams)
    )
    gateway = gateway_factory(config)
    response = gateway.post({"models": ["first", "second"], "messages": HELLO})
    assert response.status_code == 200, response.text
    metadata = response.json()["routing_metadata"]
    assert (metadata["model_canonical"], metadata["provider"]) == ("second", "b1")
    assert [(a["provider"], a["model"]) for a in metadata["attempts"]] == [
        ("a1", "first"),
        ("a2", "first"),
    ]


def test_every_deployment_failing_is_a_502_listing_the_attempts(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstreams = mocks(mock_upstream_factory, "one", "two")
    upstreams["one"].set_default(ErrorReply(503, "overloaded", type="server_error"))
    upstreams["two"].set_default(HangReply())
    config = routed_config({"m": [("one", 0.1), ("two", 0.2)]}, urls(upstreams))
    config["providers"]["two"]["timeout"] = 0.3
    response = gateway_factory(config).post({"model": "m", "messages": HELLO})
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code", "attempts"}
    assert (error["type"], error["code"]) == ("api_error", "upstream_error")
    assert "one/m 503 upstream_unavailable" in error["message"]
    assert "two/m - upstream_timeout" in error["message"]
    # the attempts as data, in `routing_metadata.attempts`' shape
    attempts = error["attempts"]
    assert [(a["provider"], a["model"], a["status"], a["error"]) for a in attempts] == [
        ("one", "m", 503, "upstream_unavailable"),
        ("two", "m", None, "upstream_timeout"),
    ]
    assert all(set(a) == {"provider", "model", "status", "error", "latency_ms"} for a in attempts)
    assert attempts[1]["latency_ms"] >= 250  # the timeout took its 0.3 s


def test_the_deadline_bounds_retries_and_fallbacks(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstreams = mocks(mock_upstream_factory, "slow1", "slow2")
    for upstream in upstreams.values():
        upstream.set_default(HangReply())
    config = routed_config(
        {"m": [("slow1", 0.1), ("slow2", 0.2)]},
        urls(upstreams),
        retries={"attempts": 3, "backoff_initial": 0.01, "backoff_max": 0.02},
    )
    config["routing"]["deadline"] = 0.8
    started = time.monotonic()
    response = gateway_factory(config).post({"model": "m", "messages": HELLO})
    elapsed = time.monotonic() - started
    assert response.status_code == 504, response.text
    error = response.json()["error"]
    assert error["code"] == "upstream_timeout"
    assert "within the 0.8 s deadline" in error["message"]
    assert elapsed >= 0.75  # the deadline, not an error, ended it
    # unbounded, 3 tries on each of 2 hanging upstreams would take 6 x 5 s (their read
    # timeout): far under that is the deadline at work, however busy the machine
    assert elapsed < 10.0
    tried = {name: len(upstream.requests) for name, upstream in upstreams.items()}
    assert tried["slow1"] >= 1 and sum(tried.values()) < 6


# --------------------------------------------------------------------------- health


def test_a_429_cools_the_deployment_for_its_retry_after(
    clocked_gateway: StartClockedGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstreams = mocks(mock_upstream_factory, "limited", "spare")
    upstreams["limited"].enqueue(
        ErrorReply(429, "Rate limit reached", type="requests", headers={"retry-after": "30"})
    )
    config = routed_config(
        {"m": [("limited", 0.1), ("spare", 1.0)]},
        urls(upstreams),
        retries={"attempts": 2, "retry_after_cap": 5},  # 30 s is over the cap: fall back
    )
    clock = MovableClock()
    gateway = clocked_gateway(config, clock)
    client = gateway.sdk()
    first = ask(client)
    assert first["provider"] == "spare"
    assert [a["status"] for a in first["attempts"]] == [429]
    assert scoreboard(gateway)["limited"]["health"] == "rate_limited"
    for _ in range(5):  # inside the cooldown: never tried
        assert ask(client)["provider"] == "spare"
    clock.advance(31)  # the Retry-After has passed
    assert scoreboard(gateway)["limited"]["health"] == "healthy"
    assert ask(client)["provider"] == "limited"  # cooled down: the cheapest again
    assert len(upstreams["limited"].requests) == 2


def test_every_deployment_rate_limited_is_a_429_with_retry_after(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstreams = mocks(mock_upstream_factory, "only")
    upstreams["only"].set_default(
        ErrorReply(429, "Rate limit reached", type="requests", headers={"retry-after": "20"})
    )
    gateway = gateway_factory(routed_config({"m": [("only", 0.1)]}, urls(upstreams)))
    for _ in range(2):  # the second is refused by the cooldown without reaching upstream
        response = gateway.post({"model": "m", "messages": HELLO})
        assert response.status_code == 429, response.text
        assert response.json()["error"]["type"] == "rate_limit_error"
        assert 19 <= int(response.headers["retry-after"]) <= 20
    assert len(upstreams["only"].requests) == 1


def test_the_circuit_opens_then_a_probe_closes_it(
    clocked_gateway: StartClockedGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstreams = mocks(mock_upstream_factory, "broken", "backup")
    upstreams["broken"].set_default(ErrorReply(500, "boom", type="server_error"))
    config = routed_config(
        {"m": [("broken", 0.1), ("backup", 1.0)]},
        urls(upstreams),
        # the circuit alone: no avoiding a deployment for its error rate before it opens
        circuit={"consecutive_failures": 3, "cooldown": 30, "avoid_error_rate": 1.0},
    )
    clock = MovableClock()
    gateway = clocked_gateway(config, clock)
    client = gateway.sdk()
    for _ in range(3):
        assert ask(client)["provider"] == "backup"  # each after a failed try on `broken`
    board = scoreboard(gateway)["broken"]
    assert board["health"] == "circuit_open"
    assert board["stats"]["consecutive_failures"] >= 3 or board["stats"]["requests"] <= 3
    for _ in range(3):
        assert ask(client)["attempts"] == []  # open: not tried
    assert len(upstreams["broken"].requests) == 3

    clock.advance(31)  # cooldown over: half-open, and the probe fails again
    assert scoreboard(gateway)["broken"]["health"] == "half_open"
    assert ask(client)["attempts"][0]["provider"] == "broken"
    assert scoreboard(gateway)["broken"]["health"] == "circuit_open"

    upstreams["broken"].set_default(None)  # repaired
    clock.advance(31)
    assert ask(client)["provider"] == "broken"  # the probe succeeds and closes it
    assert scoreboard(gateway)["broken"]["health"] == "healthy"
    assert [ask(client)["provider"] for _ in range(3)] == ["broken"] * 3


def test_the_scoreboard_reports_live_statistics(
    gateway_factory: StartGateway, mock_upstream_factory: MakeUpstream
) -> None:
    upstreams = mocks(mock_upstream_factory, "a", "b")
    gateway = gateway_factory(routed_config({"m": [("a", 0.1), ("b", 1.0)]}, urls(upstreams)))
    client = gateway.sdk()
    for _ in range(5):
        ask(client)
    wait_until(lambda: scoreboard(gateway)["a"]["stats"]["requests"] == 5, timeout=3.0)
    row = scoreboard(gateway)["a"]
    assert row["model"] == "m" and row["provider_model_id"] == "a-m"
    assert (row["input_per_mtok"], row["output_per_mtok"], row["price_source"]) == (
        0.1,
        0.2,
        "config",
    )
    stats = row["stats"]
    assert stats["errors"] == 0 and stats["error_rate"] == 0
    assert stats["latency_ms"] > 0 and stats["latency_p95_ms"] >= stats["latency_p50_ms"] > 0
    assert stats["tokens_per_second"] > 0 and stats["completion_tokens"] > 0
    assert stats["last_seen"] == pytest.approx(time.time(), abs=5)
    assert scoreboard(gateway)["b"]["stats"]["requests"] == 0
    listed = httpx.get(f"{gateway.url}/v1/models/m", timeout=5).json()["deployments"]
    assert [d["stats"]["requests"] for d in listed] == [5, 0]
