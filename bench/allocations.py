"""`make bench-allocations`: the memory a request allocates on the gateway's path, counted
with tracemalloc.

The gateway's ASGI app runs in this process (the app `switchboard serve` serves, built
from the benchmark's config), called directly with a request's scope, body and send,
so that only the gateway's own code and its upstream client are traced, not a server's
or a load client's. The upstreams are the benchmark's nginx, over real sockets. After a
warm-up (pools, caches, the first plans):

- retained: what N requests leave allocated (a tracemalloc snapshot before and after,
  after a full collection), per request, with the lines that hold it: a leak shows
  here long before it shows in RSS;
- per request: the memory blocks a request has allocated and not yet freed when it sends
  its last bytes (the traces of a snapshot taken inside that `send`, beyond those of one
  taken before it began), and the peak of its traced memory. tracemalloc sees what is
  alive, not a running count of every allocation: these are the request's footprint at
  its fullest, which is what concurrency multiplies.

usage: python bench/allocations.py [--requests 2000] [--samples 20] [--modes sse,json]
Prints the figures; writes bench/results/allocations.json. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import tempfile
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from procs import BENCH, ROOT, free_port, start_nginx, stop_all
from upstreams import NAMES, gateway_conf, model_name

sys.path.insert(0, str(ROOT))

BODY = (
    '{"model": "%s", "messages": ['
    '{"role": "system", "content": "You are a terse assistant."}, '
    '{"role": "user", "content": "Say hello in five words."}], '
    '"max_tokens": 32, "stream": %s}'
)
Message = dict[str, Any]


class Request:
    """One request to an ASGI app: its body in, its answer out."""

    def __init__(self, body: bytes, on_last_send: Callable[[], None] | None = None) -> None:
        self.body = body
        self.parts: list[bytes] = []
        self.status = 0
        self._sent_body = False
        self._complete = asyncio.Event()
        self._on_last_send = on_last_send

    def scope(self) -> Message:
        headers = [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(self.body)).encode()),
        ]
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/chat/completions",
            "raw_path": b"/v1/chat/completions",
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8080),
            "state": {},
        }

    async def receive(self) -> Message:
        if not self._sent_body:
            self._sent_body = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self._complete.wait()  # as a server does: the disconnect after the answer
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            if not message.get("more_body", False) and self._on_last_send is not None:
                self._on_last_send()
            self.parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                self._complete.set()


async def lifespan(app: Any) -> Callable[[], Awaitable[None]]:
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    started: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
    stopped: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

    async def send(message: Message) -> None:
        future = started if message["type"].startswith("lifespan.startup") else stopped
        if not future.done():
            future.set_result(message)

    task = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send)
    )
    await inbox.put({"type": "lifespan.startup"})
    assert (await started)["type"] == "lifespan.startup.complete"

    async def stop() -> None:
        await inbox.put({"type": "lifespan.shutdown"})
        await stopped
        await task

    return stop


async def one(
    app: Any, body: bytes, stream: bool, on_last_send: Callable[[], None] | None = None
) -> None:
    request = Request(body, on_last_send)
    await app(request.scope(), request.receive, request.send)
    answer = b"".join(request.parts)
    if request.status != 200 or (stream and not answer.endswith(b"data: [DONE]\n\n")):
        sys.exit(f"{request.status}: {answer[-300:]!r}")


async def measure(app: Any, mode: str, requests: int, samples: int) -> dict[str, Any]:
    stream = mode == "sse"
    body = (BODY % (model_name(f"instant-{mode}"), "true" if stream else "false")).encode()
    print(f"{mode}: warming up", flush=True)
    for _ in range(300):  # warm-up: pools, caches, plans, the first batched writes
        await one(app, body, stream)
    await asyncio.sleep(0.5)  # the batched off-path writes of the warm-up have run
    # retained: N requests, then what is still allocated
    print(f"{mode}: {requests} requests between two snapshots", flush=True)
    gc.collect()
    before = tracemalloc.take_snapshot()
    for _ in range(requests):
        await one(app, body, stream)
    await asyncio.sleep(0.5)
    gc.collect()
    after = tracemalloc.take_snapshot()
    diff = after.compare_to(before, "lineno")
    retained_bytes = sum(stat.size_diff for stat in diff)
    retained_blocks = sum(stat.count_diff for stat in diff)
    top = [
        {"where": str(stat.traceback), "bytes": stat.size_diff, "blocks": stat.count_diff}
        for stat in diff[:5]
        if stat.size_diff > 0
    ]
    # allocated by one request: the traces alive when it sends its last bytes, beyond
    # those alive before it began; and its peak
    print(f"{mode}: {samples} requests one by one", flush=True)
    live: list[int] = []
    peaks: list[int] = []
    for _ in range(samples):
        gc.collect()
        start_traces = len(tracemalloc.take_snapshot().traces)
        counted: list[int] = []

        def count(into: list[int] = counted) -> None:
            into.append(len(tracemalloc.take_snapshot().traces))

        tracemalloc.reset_peak()
        start_bytes = tracemalloc.get_traced_memory()[0]
        await one(app, body, stream, count)
        peaks.append(tracemalloc.get_traced_memory()[1] - start_bytes)
        live.append(counted[0] - start_traces)
    return {
        "requests": requests,
        "retained_bytes_per_request": retained_bytes / requests,
        "retained_blocks_per_request": retained_blocks / requests,
        "retained_top": top,
        "blocks_alive_at_answer": statistics.median(live),
        "peak_bytes_per_request": statistics.median(peaks),
    }


async def run(config_path: Path, modes: list[str], requests: int, samples: int) -> dict[str, Any]:
    from gateway.app import create_app
    from gateway.config import load_config

    app = create_app(load_config(str(config_path)))
    stop = await lifespan(app)
    results = {}
    try:
        for mode in modes:
            results[mode] = await measure(app, mode, requests, samples)
    finally:
        await stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--modes", default="sse,json")
    parser.add_argument("--samples", type=int, default=20, help="requests traced one by one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="switchboard-alloc-") as tmp_s:
        tmp = Path(tmp_s)
        try:
            ports = {name: free_port() for name in NAMES}
            start_nginx(tmp, ports)
            config = tmp / "gateway.yaml"
            # the request log to a file: in the benchmark it is on, written off the path
            log = f"logging: {{requests: true, output: {tmp}/requests.log}}\n"
            config.write_text(log + gateway_conf(ports, "memory://"))
            tracemalloc.start(1)
            results = asyncio.run(run(config, args.modes.split(","), args.requests, args.samples))
            tracemalloc.stop()
        finally:
            stop_all()
    for mode, f in results.items():
        print(
            f"{mode}: retained {f['retained_bytes_per_request']:.1f} bytes "
            f"({f['retained_blocks_per_request']:.3f} blocks) per request over "
            f"{f['requests']:,} requests; a request had {f['blocks_alive_at_answer']:.0f} "
            f"blocks alive when it answered, peak {f['peak_bytes_per_request'] / 1024:.1f} KiB"
        )
        for line in f["retained_top"]:
            print(f"    {line['bytes']:>+9} B {line['blocks']:>+6} blocks  {line['where']}")
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "allocations.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {(out / 'allocations.json').relative_to(ROOT)}")


if __name__ == "__main__":
    main()
