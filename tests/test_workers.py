"""`switchboard serve --workers N`: N processes on one port, metrics summed across them,
and one SIGTERM stops them all. A real `switchboard serve` process."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from tests.redis_server import free_port
from tests.routing_setup import wait_until

ROOT = Path(__file__).resolve().parent.parent
ADMIN_KEY = "sk-admin-for-workers"
CONFIG = {
    "auth": "none",
    "store": "memory://",
    "admin": {"key_sha256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest()},
    # `slow`: streams whose first token is ten minutes off: in flight until the test ends
    "providers": {"sim": {"kind": "simulated"}, "slow": {"kind": "simulated", "ttft_ms": 600_000}},
    "models": {
        "m": {
            "deployments": [
                {"provider": "sim", "model": "s", "input_per_mtok": 1, "output_per_mtok": 2}
            ]
        },
        "slow": {
            "deployments": [
                {"provider": "slow", "model": "s", "input_per_mtok": 1, "output_per_mtok": 2}
            ]
        },
    },
}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
REQUESTS = re.compile(r'^switchboard_requests_total\{[^}]*outcome="success"[^}]*\} (\S+)$', re.M)
IN_FLIGHT = re.compile(r"^switchboard_http_requests_in_flight(?:\{[^}]*\})? (\S+)$", re.M)


class Served:
    def __init__(self, process: subprocess.Popen[str], url: str, metrics: Path) -> None:
        self.process, self.url, self.metrics = process, url, metrics

    def fresh(self) -> httpx.Client:
        """A client that opens a new connection per request: the kernel hands each to
        whichever worker accepts first."""
        return httpx.Client(
            base_url=self.url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
        )

    def worker_pids(self) -> set[str]:
        """Workers that have counted an answer: each writes its own counter file."""
        return {p.stem.rsplit("_", 1)[1] for p in self.metrics.glob("counter_*.db")}


def serve(tmp_path: Path, *args: str) -> Served:
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    metrics = tmp_path / "metrics"
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "gateway", "serve"),
            "--config",
            str(config),
            "--port",
            str(port),
            *args,
        ],
        cwd=ROOT,
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    served = Served(process, f"http://127.0.0.1:{port}", metrics)

    def up() -> bool:
        assert process.poll() is None, process.communicate()[0]
        try:
            return httpx.get(f"{served.url}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(up, timeout=90)  # three interpreters importing on a busy machine
    except BaseException:
        process.kill()  # the supervisor; its workers follow within a second
        process.wait(10)
        raise
    return served


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[Served]:
    served = serve(tmp_path, "--workers", "2")
    yield served
    if served.process.poll() is None:
        served.process.terminate()  # SIGTERM: the supervisor stops its workers
        served.process.wait(60)


def _send(served: Served, count: int) -> int:
    with served.fresh() as client:
        return sum(
            client.post("/v1/chat/completions", json=CHAT).status_code == 200 for _ in range(count)
        )


def _scraped(served: Served) -> float:
    with served.fresh() as client:
        found = REQUESTS.findall(client.get("/metrics").text)
    return sum(float(v) for v in found)


def test_two_workers_share_the_port_their_metrics_and_one_sigterm(two_workers: Served) -> None:
    answered = 0
    with ThreadPoolExecutor(8) as pool:
        # until both workers have answered some (the kernel spreads new connections)
        while len(two_workers.worker_pids()) < 2:
            answered += sum(pool.map(lambda _: _send(two_workers, 10), range(8)))
            assert answered < 5000, "one worker took every connection"
    assert answered > 0
    # whichever worker a scrape reaches, it reports every worker's count: each flushes
    # its batch within a second
    wait_until(lambda: all(_scraped(two_workers) == answered for _ in range(6)), timeout=15)

    # a live price on a memory store would reach one worker only: refused, not split
    with two_workers.fresh() as client:
        answer = client.put(
            "/v1/admin/prices",
            json={"model": "m", "provider": "sim", "input_per_mtok": 0.5, "output_per_mtok": 1},
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
        )
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error["code"] == "prices_not_shared"
    assert "2 worker processes on a memory:// store" in error["message"]

    # one SIGTERM to the supervisor stops every worker, cleanly, and frees the port
    two_workers.process.terminate()
    output, _ = two_workers.process.communicate(timeout=60)
    assert two_workers.process.returncode == 0, output
    assert "(uvicorn, 2 workers)" in output
    assert "Traceback" not in output
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{two_workers.url}/healthz", timeout=2)


def _hold_stream(client: httpx.Client) -> None:
    """A stream that stays in flight until the gateway stops (its first token is far off)."""
    try:
        with client.stream("POST", "/v1/chat/completions", json={**CHAT, "model": "slow"}) as r:
            r.read()
    except httpx.TransportError:
        pass  # the gateway stopped under it, as the test ends


def test_requests_in_flight_are_summed_over_the_workers(tmp_path: Path) -> None:
    served = serve(tmp_path, "--workers", "2", "--drain-timeout", "1")
    held = 6  # on connections of their own: the kernel spreads them over both workers
    # no read timeout: the client must not be the one to give up
    clients = [
        httpx.Client(base_url=served.url, timeout=httpx.Timeout(10, read=None)) for _ in range(held)
    ]
    pool = ThreadPoolExecutor(held)
    try:
        for client in clients:
            pool.submit(_hold_stream, client)

        def in_flight() -> float:
            with served.fresh() as client:
                return sum(float(v) for v in IN_FLIGHT.findall(client.get("/metrics").text))

        # whichever worker answers the scrape, it reports both workers' (each publishes
        # its count every second), and the scrape itself. The other worker's count may
        # also hold a scrape it was answering when it last published: one more at most.
        wait_until(lambda: all(held + 1 <= in_flight() <= held + 2 for _ in range(6)), timeout=90)
    finally:
        served.process.terminate()
        served.process.communicate(timeout=60)
        pool.shutdown(wait=True)
        for client in clients:
            client.close()


def test_workers_auto_starts_one_per_core(tmp_path: Path) -> None:
    served = serve(tmp_path, "--workers", "auto")
    served.process.terminate()
    output, _ = served.process.communicate(timeout=40)
    cores = len(os.sched_getaffinity(0))
    assert f"(uvicorn, {cores} worker{'s' if cores > 1 else ''})" in output


def test_workers_exit_when_their_supervisor_is_killed(two_workers: Served) -> None:
    """A SIGKILL gives the supervisor no chance to pass SIGTERM on: the workers notice
    they are orphans and drain and exit by themselves, freeing the port."""
    two_workers.process.kill()
    two_workers.process.wait(10)

    def port_free() -> bool:
        try:
            httpx.get(f"{two_workers.url}/healthz", timeout=1)
        except httpx.ConnectError:
            return True
        except httpx.TransportError:
            pass
        return False

    wait_until(port_free, timeout=30)
