"""`switchboard loadgen`: the tallies on hand-made outcomes, and real runs against a real
gateway of simulated providers."""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from gateway.cli import main as cli_main
from gateway.loadgen.command import LoadResult, run_load
from gateway.loadgen.options import Settings
from gateway.loadgen.scoreboard import scoreboard_notes
from gateway.loadgen.tally import Outcome, Tally, percentile
from gateway.loadgen.traffic import outcome_of
from tests.gateway_server import BASE_CONFIG, GatewayServer

ROOT = Path(__file__).resolve().parent.parent
PROVIDERS = ["sim-a", "sim-b", "sim-c"]
KEY = "sb-loadgen-test-key"


def deployment(provider: str, price: float) -> dict[str, Any]:
    return {
        "provider": provider,
        "model": f"{provider}-1",
        "input_per_mtok": price,
        "output_per_mtok": 2 * price,
    }


def simulated_config(**overrides: Any) -> dict[str, Any]:
    """`sim-model` on three fast simulated providers of different speed and price, and
    `broken-model` on one that always fails."""
    providers: dict[str, Any] = {
        name: {"kind": "simulated", "ttft_ms": ttft, "completion_tokens": 8}
        for name, ttft in zip(PROVIDERS, [5, 15, 30], strict=True)
    }
    providers["sim-broken"] = {"kind": "simulated", "failure_rate": 1.0, "failure_status": 503}
    models = {
        "sim-model": {
            "deployments": [
                deployment(name, price)
                for name, price in zip(PROVIDERS, [3.0, 1.0, 2.0], strict=True)
            ]
        },
        "broken-model": {"deployments": [deployment("sim-broken", 1.0)]},
    }
    return {**BASE_CONFIG, "providers": providers, "models": models, **overrides}


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayServer]:
    server = GatewayServer(simulated_config()).start()
    yield server
    server.stop()


async def load(server: GatewayServer, **settings: Any) -> tuple[LoadResult, str]:
    """Run loadgen without a live view; its result and the summary it printed."""
    out = io.StringIO()
    console = Console(file=out, width=160)
    given: dict[str, Any] = {"model": "sim-model", "concurrency": 4, "duration_s": None}
    given |= settings
    result = await run_load(Settings(url=server.url, live=False, **given), console)
    return result, out.getvalue()


def ok(at: float, provider: str, latency_ms: float = 100.0, cost: float = 0.001) -> Outcome:
    return Outcome(finished_at=at, latency_ms=latency_ms, provider=provider, cost_usd=cost)


def failed(at: float, error: str = "502 upstream_unavailable") -> Outcome:
    return Outcome(finished_at=at, latency_ms=50.0, error=error)


def tally_of(*outcomes: Outcome, providers: tuple[str, ...] = ()) -> Tally:
    tally = Tally(providers, window_s=10.0, share_window_s=3.0)
    for outcome in outcomes:
        tally.add(outcome)
    return tally


# --- the tally, on hand-made outcomes ----------------------------------------------


@pytest.mark.parametrize(
    ("values", "pct", "expected"),
    [
        ([], 50, None),
        ([7.0], 95, 7.0),
        ([float(v) for v in range(1, 101)], 50, 50.0),
        ([float(v) for v in range(1, 101)], 95, 95.0),
        ([float(v) for v in range(1, 21)], 95, 19.0),
        ([1.0, 2.0, 3.0], 0, 1.0),
        ([1.0, 2.0, 3.0], 100, 3.0),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], pct: float, expected: float) -> None:
    assert percentile(values, pct) == expected


def test_shares_costs_and_errors() -> None:
    tally = tally_of(
        ok(1, "a", cost=0.001),
        ok(2, "a", cost=0.003),
        ok(3, "b", cost=0.010),
        ok(4, "a", cost=0.002),
        failed(5),
        failed(6),
        failed(7, "no connection"),
    )
    snapshot = tally.snapshot(now=10.0)
    rows = {row.provider: row for row in snapshot.rows}
    assert [row.provider for row in snapshot.rows] == ["a", "b"]
    assert (rows["a"].served, rows["b"].served) == (3, 1)
    assert (rows["a"].share_pct, rows["b"].share_pct) == (75.0, 25.0)
    assert rows["a"].mean_cost_usd == pytest.approx(0.002)
    assert rows["a"].total_cost_usd == pytest.approx(0.006)
    assert snapshot.total_cost_usd == pytest.approx(0.016)
    assert (snapshot.answered, snapshot.succeeded) == (7, 4)
    assert snapshot.errors == {"502 upstream_unavailable": 2, "no connection": 1}
    assert list(snapshot.errors) == ["502 upstream_unavailable", "no connection"]
    assert snapshot.rate_per_s == pytest.approx(0.7)


def test_listed_providers_have_rows_from_the_start_and_keep_their_order() -> None:
    tally = tally_of(ok(1, "c"), ok(2, "z"), providers=("a", "b", "c"))
    snapshot = tally.snapshot(now=2.0)
    assert [row.provider for row in snapshot.rows] == ["a", "b", "c", "z"]
    idle = snapshot.rows[0]
    assert (idle.served, idle.share_pct, idle.p50_ms, idle.mean_cost_usd) == (0, 0.0, None, None)
    assert sum(row.share_pct for row in snapshot.rows) == pytest.approx(100.0)


def test_failed_attempts_count_per_provider_named_even_one_that_never_served() -> None:
    retried = Outcome(
        finished_at=1,
        latency_ms=300,
        provider="a",
        cost_usd=0.001,
        failed_attempts=("flaky", "flaky", "b"),
    )
    snapshot = tally_of(retried, ok(2, "b")).snapshot(now=3.0)
    rows = {row.provider: row for row in snapshot.rows}
    assert {name: row.failed_attempts for name, row in rows.items()} == {
        "a": 0,
        "flaky": 2,
        "b": 1,
    }
    assert rows["flaky"].served == 0


def test_latency_window_forgets_old_answers_but_the_overall_keeps_them() -> None:
    old = [ok(t / 10, "a", latency_ms=1000.0) for t in range(1, 20)]  # ended by t = 1.9
    new = [ok(12 + t / 10, "a", latency_ms=10.0 + t) for t in range(10)]  # t = 12.0 .. 12.9
    row = tally_of(*old, *new).snapshot(now=13.0).rows[0]
    assert (row.recent_p50_ms, row.recent_p95_ms) == (14.0, 19.0)
    assert row.p50_ms == 1000.0  # 19 of the 29 answers took a second
    assert row.p95_ms == 1000.0
    assert tally_of(*old).snapshot(now=30.0).rows[0].recent_p50_ms is None


def test_recent_share_follows_the_last_seconds_only() -> None:
    # a served everything for 10 s, then traffic moved to b
    early = [ok(t, "a") for t in range(10)]
    late = [ok(10 + t / 4, "b") for t in range(8)]  # t = 10.0 .. 11.75
    snapshot = tally_of(*early, *late).snapshot(now=12.5)
    rows = {row.provider: row for row in snapshot.rows}
    assert rows["a"].share_pct == pytest.approx(100 * 10 / 18)
    assert rows["b"].recent_share_pct == 100.0  # a answered last at t = 9, 3.5 s ago
    assert rows["a"].recent_share_pct == 0.0
    assert snapshot.recent_rate_per_s == pytest.approx(8 / 3)


def test_an_outcome_that_ended_earlier_is_filed_in_time_order() -> None:
    tally = tally_of(ok(5, "a"), ok(1, "b"), ok(3, "a"))
    assert [o.finished_at for o in tally.outcomes] == [1, 3, 5]


# --- reading answers ------------------------------------------------------------------


def test_outcome_of_a_success_an_error_and_garbage() -> None:
    body = (
        b'{"id":"x","choices":[],"routing_metadata":{"provider":"sim-a","routing_strategy":'
        b'"cost","cost":{"usd":0.25,"input_usd":0.05},"latency_ms":3,"attempts":['
        b'{"provider":"sim-c","status":503,"error":"upstream_unavailable","latency_ms":1}]}}'
    )
    served = outcome_of(200, body, finished_at=2.0, latency_ms=12.5)
    assert (served.provider, served.cost_usd, served.strategy) == ("sim-a", 0.25, "cost")
    assert served.failed_attempts == ("sim-c",)
    refused = outcome_of(
        502,
        b'{"error":{"message":"m","type":"api_error","code":"upstream_unavailable","param":null}}',
        2.0,
        1.0,
    )
    assert (refused.ok, refused.error) == (False, "502 upstream_unavailable")
    mid_stream = outcome_of(200, b'{"error":{"message":"m","code":"upstream_stream_cut"}}', 2, 1)
    assert mid_stream.error == "stream error upstream_stream_cut"
    assert outcome_of(503, b"<html>busy</html>", 2.0, 1.0).error == "503 bad body"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            {
                "data": [
                    {
                        "provider": "sim-a",
                        "health": "healthy",
                        "error_rate": 0.25,
                        "latency_p95_ms": 812.4,
                    }
                ]
            },
            {"sim-a": "healthy err 25% 812 ms"},
        ),
        (
            {"sim-a/m-1": {"stats": {"latency_ms": 40}}, "sim-b/m-2": {"circuit": "open"}},
            {"sim-a": "40 ms", "sim-b": "open"},
        ),
        ({"object": "list", "data": "nope"}, {}),
        ([1, "two", None], {}),
        ("text", {}),
        ({"data": [{"provider": 7, "health": "ok"}]}, {}),
    ],
)
def test_scoreboard_notes_take_what_they_recognise(payload: Any, expected: dict[str, str]) -> None:
    assert scoreboard_notes(payload) == expected


# --- real runs against a real gateway -------------------------------------------------


def check_summary(result: LoadResult, printed: str, sent: int) -> None:
    assert result.exit_code == 0
    assert result.tally is not None
    outcomes = result.tally.outcomes
    snapshot = result.tally.snapshot(now=outcomes[-1].finished_at)
    assert len(outcomes) == snapshot.answered == snapshot.succeeded == sent
    assert [row.provider for row in snapshot.rows] == PROVIDERS  # the gateway's listing
    assert sum(row.served for row in snapshot.rows) == sent
    assert sum(row.share_pct for row in snapshot.rows) == pytest.approx(100.0)
    assert all(o.cost_usd > 0 for o in outcomes)
    assert snapshot.total_cost_usd > 0
    assert snapshot.total_cost_usd == math.fsum(o.cost_usd for o in outcomes)
    assert snapshot.total_cost_usd == pytest.approx(
        sum(row.total_cost_usd for row in snapshot.rows)
    )
    for name in PROVIDERS:
        assert name in printed
    assert f"{sent} requests in" in printed
    assert f"total cost ${snapshot.total_cost_usd:.5f}" in printed


async def test_a_run_of_n_requests_is_tallied_exactly(gateway: GatewayServer) -> None:
    result, printed = await load(gateway, requests=30, strategy="cost")
    check_summary(result, printed, sent=30)
    assert result.tally is not None
    assert {o.strategy for o in result.tally.outcomes} == {"cost"}


async def test_streaming_reads_metadata_from_the_last_event(gateway: GatewayServer) -> None:
    result, printed = await load(gateway, requests=12, stream=True, max_tokens=4)
    check_summary(result, printed, sent=12)


async def test_a_timed_run_stops_by_itself(gateway: GatewayServer) -> None:
    result, _ = await load(gateway, duration_s=1.0, concurrency=2)
    assert result.exit_code == 0 and result.tally is not None
    last = result.tally.outcomes[-1].finished_at
    # the requests in flight at the deadline still end and count; no upper bound on when,
    # which a loaded machine could overrun: that `load` returned is the run stopping
    assert last >= 1.0
    assert len(result.tally.outcomes) >= 2


async def test_all_failing_is_tallied_by_status_and_exits_1(gateway: GatewayServer) -> None:
    result, printed = await load(gateway, model="broken-model", requests=5)
    assert result.exit_code == 1 and result.tally is not None
    snapshot = result.tally.snapshot(now=1.0)
    assert (snapshot.answered, snapshot.succeeded) == (5, 0)
    # the code depends on the router (the upstream's failure, or an open circuit), not the
    # status: every candidate failed
    assert sum(snapshot.errors.values()) == 5
    assert all(label.startswith("502 ") for label in snapshot.errors)
    for label, count in snapshot.errors.items():
        assert f"{label} ({count})" in printed


async def test_the_api_key_is_sent_as_a_bearer_token(
    gateway_factory: Callable[[dict[str, Any]], GatewayServer],
) -> None:
    keys = {"keys": [{"name": "demo", "key_sha256": hashlib.sha256(KEY.encode()).hexdigest()}]}
    server = gateway_factory(simulated_config(auth=keys))
    result, _ = await load(server, requests=3, api_key=KEY)
    assert result.exit_code == 0
    refused, printed = await load(server, requests=3, api_key="sb-wrong")
    assert refused.exit_code == 1
    assert "401 invalid_api_key (3)" in printed


async def test_ctrl_c_ends_the_run_early_and_still_prints_the_summary(
    gateway: GatewayServer,
) -> None:
    out = io.StringIO()
    # a run of ten minutes, unless Ctrl-C ends it
    settings = Settings(url=gateway.url, model="sim-model", duration_s=600.0, live=False)

    async def ctrl_c_once_handled() -> None:
        """Ctrl-C as soon as loadgen handles it (once the model listing came back, which
        a loaded machine may take its time over), never before: it would end the test."""
        before = signal.getsignal(signal.SIGINT)  # asyncio's runner's, here
        for _ in range(6000):
            if signal.getsignal(signal.SIGINT) is not before:
                signal.raise_signal(signal.SIGINT)
                return
            await asyncio.sleep(0.01)
        raise AssertionError("loadgen never took over Ctrl-C")

    interrupting = asyncio.create_task(ctrl_c_once_handled())
    started = time.perf_counter()
    result = await run_load(settings, Console(file=out, width=160), handle_sigint=True)
    await interrupting
    assert time.perf_counter() - started < 120.0  # ended by Ctrl-C, not by its 600 s
    assert result.exit_code in (0, 1) and result.tally is not None
    assert f"{len(result.tally.outcomes)} requests in" in out.getvalue()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handed back


def test_the_command_prints_a_plain_summary_when_not_on_a_terminal(
    gateway: GatewayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["loadgen", "--url", gateway.url, "--model", "sim-model", "--requests", "6"]
    assert cli_main(argv) == 0
    printed = capsys.readouterr().out
    assert "6 requests in" in printed
    assert "\x1b[" not in printed  # no live view, no colour codes
    for name in PROVIDERS:
        assert name in printed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_an_unreachable_gateway_exits_1_with_a_clear_message() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # closed again: nothing listens there
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "loadgen", "--url", url, "--duration", "5"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert result.returncode == 1
    assert f"loadgen: cannot reach the gateway at {url}" in result.stderr
    assert "Traceback" not in result.stderr
