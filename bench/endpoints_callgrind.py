"""`make bench-endpoints-instructions`: the gateway's work per request on each endpoint, in
CPU instructions, beside chat's, on the same instant upstreams as bench/endpoints.py.

Wall-clock CPU time swings by a factor of two on a loaded machine; instruction counts do
not. This process builds the gateway's ASGI app with bench/endpoints.py's config and
calls it directly (no HTTP server in front: the same for every endpoint), while the app
reaches the private nginx over real sockets. It runs under
`valgrind --tool=callgrind --instr-atstart=no`; for each endpoint, after warm-up requests,
instrumentation is switched on for N sequential requests and the count dumped.

Background work is made per request and deterministic: the periodic flushers (accounts,
request log, store) are stopped and flushed explicitly inside each measured batch, so the
batched writes a request causes are counted, whatever the machine's speed.

Run: `make bench-endpoints-instructions` (BENCH_ROUNDS, default 3; BENCH_REQUESTS per
measurement, default 150; BENCH_ONLY, comma-separated kinds). Without valgrind
(`python bench/endpoints_callgrind.py --no-valgrind`) it reports CPU µs per request.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from endpoints import ENDPOINTS, Endpoint, gateway_conf, nginx_conf, request_body
from procs import BENCH, ROOT, free_port, port_open, spawn, stop_all, wait_until

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "150"))
WARMUP = 30
ONLY = {k for k in os.environ.get("BENCH_ONLY", "").split(",") if k}
UNDER_VALGRIND = os.environ.get("SB_UNDER_CALLGRIND") == "1"


def callgrind(*args: str) -> None:
    """callgrind_control on this process; waited for by polling, so the event loop (and
    nothing else of ours) runs meanwhile."""
    proc = subprocess.Popen(["callgrind_control", *args, str(os.getpid())], stdout=subprocess.PIPE)
    while proc.poll() is None:
        pass


def last_dump_total(out: Path, seen: set[Path]) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for path in sorted(set(out.parent.glob(out.name + ".*")) - seen):
            seen.add(path)
            # `totals:` (the dump's `summary:` can overflow once dumps have reset it)
            for line in reversed(path.read_text(errors="replace").splitlines()):
                if line.startswith("totals:"):
                    return int(line.split()[1])
    sys.exit("no callgrind dump")


class Driver:
    """The app called as an ASGI server would, one request at a time."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def one(self, endpoint: Endpoint) -> None:
        body = request_body(endpoint).encode()
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8080),
            "client": ("127.0.0.1", 50000),
            "scheme": "http",
            "method": "POST",
            "root_path": "",
            "path": endpoint.path,
            "raw_path": endpoint.path.encode(),
            "query_string": b"",
            "headers": [
                (b"host", b"127.0.0.1:8080"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
            "state": {},
        }
        finished = asyncio.Event()
        delivered = False
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await finished.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished.set()

        await self.app(scope, receive, send)
        if status != [200]:
            sys.exit(f"{endpoint.kind}: status {status}")


async def lifespan(app: Any) -> Any:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def send(message: dict[str, Any]) -> None:
        if message["type"].startswith("lifespan.startup") and not started.done():
            started.set_result(message)

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    assert (await started)["type"] == "lifespan.startup.complete"

    async def stop() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await task

    return stop


async def measure_all(config: Path, out: Path) -> dict[str, list[float]]:
    from gateway.app import create_app
    from gateway.config import load_config

    app = create_app(load_config(str(config)))
    stop = await lifespan(app)
    services = app.state.services
    flushers = [services.accounts, services.store, services.watch.request_log]
    for owner in flushers:  # no wall-clock background work: flushed in each batch instead
        task = getattr(owner, "_task", None) if owner is not None else None
        if task is not None:
            task.cancel()

    async def flush() -> None:
        await services.store._flush()
        await services.accounts.flush()
        if services.watch.request_log is not None:
            await services.watch.request_log.flush()

    driver = Driver(app)
    endpoints = [e for e in ENDPOINTS if not ONLY or e.kind in ONLY]
    counts: dict[str, list[float]] = {e.kind: [] for e in endpoints}
    seen: set[Path] = set()
    for round_ in range(ROUNDS):
        for endpoint in endpoints:
            for _ in range(WARMUP):
                await driver.one(endpoint)
            await flush()
            if UNDER_VALGRIND:
                callgrind("--instr=on")
            cpu = time.process_time()
            for _ in range(REQUESTS):
                await driver.one(endpoint)
            await flush()
            cpu = time.process_time() - cpu
            if UNDER_VALGRIND:
                callgrind("--dump")
                callgrind("--instr=off")
                value = last_dump_total(out, seen) / REQUESTS
            else:
                value = cpu / REQUESTS * 1e6
            counts[endpoint.kind].append(value)
            print(f"round {round_} {endpoint.kind}: {value:,.0f}", flush=True)
    await stop()
    return counts


def report(counts: dict[str, list[float]], unit: str) -> None:
    median = {kind: statistics.median(values) for kind, values in counts.items()}
    rows: list[dict[str, Any]] = []
    for endpoint in ENDPOINTS:
        if endpoint.kind not in median:
            continue
        base = "chat" if endpoint.upstream == "json" else "chat-stream"
        row: dict[str, Any] = {
            "endpoint": endpoint.kind,
            "per_request": round(median[endpoint.kind]),
            "rounds": [round(v) for v in counts[endpoint.kind]],
        }
        if base in median:
            row["vs_chat"] = round(median[endpoint.kind] / median[base], 3)
        rows.append(row)
    head = f"{'endpoint':<24} {unit + '/req':>14} {'vs chat':>8}   rounds"
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        ratio = f"{r['vs_chat']:>8.2f}" if "vs_chat" in r else " " * 8
        spread = " ".join(f"{v:,}" for v in r["rounds"])
        print(f"{r['endpoint']:<24} {r['per_request']:>14,} {ratio}   {spread}")
    name = "endpoints_instructions.json" if unit == "instructions" else "endpoints_cpu.json"
    out = BENCH / "results" / name
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"unit": unit, "requests": REQUESTS, "rows": rows}, indent=1))


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-instructions-"))
    out = tmp / "callgrind.out"
    if "--child" in sys.argv:  # under valgrind: nginx and the config are the parent's
        counts = asyncio.run(measure_all(Path(sys.argv[-2]), Path(sys.argv[-1])))
        (Path(sys.argv[-1]).parent / "counts.json").write_text(json.dumps(counts))
        return
    ports = {"json": free_port(), "sse": free_port()}
    try:
        (tmp / "nginx.conf").write_text(nginx_conf(tmp, ports))
        files = ["-p", f"{tmp}", "-e", f"{tmp}/nginx-error.log", "-c", f"{tmp}/nginx.conf"]
        nginx = spawn(["nginx", *files], tmp / "nginx.log")

        def up() -> bool:
            return all(port_open(p) for p in ports.values())

        wait_until(up, "nginx", nginx, tmp / "nginx.log", 15)
        config = tmp / "gateway.yaml"
        config.write_text(gateway_conf(ports) + f"logging: {{output: {tmp}/requests.log}}\n")
        if "--no-valgrind" in sys.argv:
            report(asyncio.run(measure_all(config, out)), "CPU µs")
            return
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        cmd += [f"--callgrind-out-file={out}", str(ROOT / ".venv/bin/python")]
        cmd += [__file__, "--child", str(config), str(out)]
        env = {**os.environ, "SB_UNDER_CALLGRIND": "1"}
        subprocess.run(cmd, check=True, env=env, stderr=subprocess.DEVNULL)
        report(json.loads((tmp / "counts.json").read_text()), "instructions")
    finally:
        stop_all()


if __name__ == "__main__":
    main()
