"""What one non-streaming request costs, counted in instructions: robust on a busy machine.

The gateway's (or the floor's) ASGI app is called directly in this process, without an
HTTP server in front (uvicorn's share is the same for both), against the benchmark's
instant nginx upstream over real aiohttp connections. Run it under callgrind and the
instructions per request come out the same to 0.1 % however loaded the machine is:

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg \\
        .venv/bin/python bench/request_costs.py gateway 640 --concurrency 64
    grep ^summary /tmp/cg.1 /tmp/cg.2   # .1: the requests, .2: the work they batched

Under callgrind (CALLGRIND=1 is set for it) the background loops that wake on the clock
(accounting deliveries, the routing store's flush, the request log's writer) are stopped
and the batched work is done once at the end of the window instead, so that a slow
machine does not add wake-ups to the count; part 1 is the requests themselves, part 2
what they left for the batches. Without valgrind it prints CPU µs per request, and with
`--profile FILE` writes a cProfile (CPU time) of the window.

usage: request_costs.py gateway|floor N [--concurrency C] [--variant default|off|on]
  default: the bench's config (auth: none), request log on (to a file)
  off: request log off too (governance is off with auth: none)
  on: a key with rpm, tpm and budgets in a team with the same, a gateway budget, the
      request log to a file (BENCH_GOVERNANCE's config)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:] = [str(BENCH), str(BENCH.parent), *sys.path]

import upstreams  # noqa: E402
from procs import free_port, start_nginx, stop_all  # noqa: E402

BODY = json.dumps(
    {
        "model": "bench-json",
        "max_tokens": 32,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Say hello in one short sentence."},
        ],
    }
).encode()
CALLGRIND = bool(os.environ.get("CALLGRIND"))


def callgrind(*args: str) -> None:
    """callgrind_control on this process; it answers between two of our instructions,
    so we spin (not wait) until it has."""
    if not CALLGRIND:
        return
    control = subprocess.Popen(
        ["callgrind_control", *args, str(os.getpid())], stdout=subprocess.DEVNULL
    )
    while control.poll() is None:
        pass


def build(target: str, variant: str, ports: dict[str, int], tmp: Path) -> tuple[Any, list[Any]]:
    if target == "floor":
        import floor

        return floor.create_app(upstreams.floor_routes(ports)), []
    from gateway.app import create_app
    from gateway.config import load_config

    conf = upstreams.gateway_conf(ports, "memory://")
    headers: list[tuple[bytes, bytes]] = []
    log = f"logging: {{requests: true, output: {tmp}/requests.log}}\n"
    if variant == "off":
        conf = "logging: {requests: false}\n" + conf
    elif variant == "on":
        conf = log + upstreams.governance_conf() + conf.replace("auth: none\n", "")
        headers = [(b"authorization", b"Bearer " + upstreams.BENCH_KEY.encode())]
    else:
        conf = log + conf
    (tmp / "gateway.yaml").write_text(conf)
    # as `serve` builds it (its collector settings too)
    return create_app(load_config(str(tmp / "gateway.yaml")), freeze_gc=True), headers


async def lifespan(app: Any) -> Any:
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    started = asyncio.get_running_loop().create_future()

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


async def one(app: Any, extra: list[tuple[bytes, bytes]]) -> None:
    """One request as uvicorn hands it over (wrk's headers)."""
    headers = [
        (b"host", b"127.0.0.1:8080"),
        (b"user-agent", b"wrk"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
        *extra,
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 5555),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "headers": headers,
        "state": {},
    }
    received, done, status = False, asyncio.Event(), []

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif not message.get("more_body"):
            done.set()

    await app(scope, receive, send)
    if status != [200]:
        sys.exit(f"answered {status}: the measurement would count a failure")


async def requests(app: Any, headers: list[Any], n: int, concurrency: int) -> None:
    left = n

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await one(app, headers)

    await asyncio.gather(*(client() for _ in range(concurrency)))


async def measure(app: Any, headers: list[Any], args: argparse.Namespace) -> None:
    stop = await lifespan(app)
    services = getattr(app.state, "services", None)
    if services is not None and CALLGRIND:
        owners = (services.accounts, services.store, services.keys, services.watch.request_log)
        for owner in owners:
            if owner is not None and getattr(owner, "_task", None) is not None:
                owner._task.cancel()

    async def flush() -> None:
        if services is None or not CALLGRIND:
            await asyncio.sleep(0.25)  # a delivery or two of the batched work
            return
        await services.store._flush()  # the routing statistics' share of a request
        await services.accounts.flush()
        if services.watch.request_log is not None:
            await services.watch.request_log.flush()

    await requests(app, headers, args.warmup, args.concurrency)
    await flush()
    profile = cProfile.Profile(time.process_time) if args.profile else None
    callgrind("-i", "on")
    cpu, wall = time.process_time(), time.perf_counter()
    if profile:
        profile.enable()
    await requests(app, headers, args.n, args.concurrency)
    callgrind("-d")  # part 1: the requests
    await flush()
    if profile:
        profile.disable()
        profile.dump_stats(args.profile)
    callgrind("-d")  # part 2: their batched work
    callgrind("-i", "off")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        f"{args.target} {args.variant}: {args.n} requests at concurrency {args.concurrency}, "
        f"{cpu / args.n * 1e6:.1f} µs CPU per request (wall {wall / args.n * 1e6:.1f} µs)"
    )
    await stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("target", choices=["gateway", "floor"])
    parser.add_argument("n", type=int)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--variant", default="default", choices=["default", "off", "on"])
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--profile", help="write a cProfile (CPU time) of the window here")
    args = parser.parse_args()
    import uvloop

    tmp = Path(tempfile.mkdtemp(prefix="request-costs-"))
    ports = {name: free_port() for name in upstreams.NAMES}
    start_nginx(tmp, ports)
    try:
        app, headers = build(args.target, args.variant, ports, tmp)
        uvloop.run(measure(app, headers, args))
    finally:
        stop_all()


if __name__ == "__main__":
    main()
