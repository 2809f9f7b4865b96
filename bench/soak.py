"""`make bench-soak`: does the gateway's memory stay flat? A bounded soak on loopback.

Starts the benchmark's nginx upstreams and `switchboard serve` (as `make bench` does,
store in memory, request log on), then sends a fixed number of chat completions (by
default 100,000 streamed and 100,000 not, one mode after the other) from a client of its
own, and reads the gateway's resident memory (RSS, from /proc) as it goes. The
generations store (`GET /v1/generations/{id}`) keeps up to 100,000 past requests by
design, about a KiB each; the soak bounds it to 1,000 (`--as-shipped` does not), so that
what it measures is memory that nothing bounds. Issue 9's
bound: RSS after all the requests of a mode within 10 % of RSS after its first 10,000
(the first ones warm every cache and pool; what grows after them is a leak).

usage: python bench/soak.py [--requests 100000] [--concurrency 32] [--modes sse,json]
                           [--as-shipped]
Prints the RSS curve and the verdict; writes bench/results/soak.json. Exit 1 when a
mode grew by more than the bound. Not part of `make test` (minutes, and timing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httptools
import uvloop
from procs import BENCH, ROOT, free_port, start_gateway, start_nginx, stop_all
from upstreams import NAMES, model_name

BOUND = 0.10  # RSS may grow by this share after the first 10,000 requests
FIRST = 10_000
BODY = (
    '{"model": "%s", "messages": ['
    '{"role": "system", "content": "You are a terse assistant."}, '
    '{"role": "user", "content": "Say hello in five words."}], '
    '"max_tokens": 32, "stream": %s}'
)


def rss_kib(pid: int) -> int:
    """Resident memory of the process and its children (the uvicorn worker)."""
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total += int(line.split()[1])
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        total += rss_kib(int(child))
    return total


class Client(asyncio.Protocol):
    """One keep-alive connection, one request at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.done: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.tail = (self.tail + body)[-64:]

    def on_message_complete(self) -> None:
        assert self.done is not None
        self.done.set_result(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("the gateway closed the connection"))

    async def request(self, payload: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.done = asyncio.get_running_loop().create_future()
        self.tail = b""
        self.transport.write(payload)
        status = await self.done
        return status, self.tail


async def soak(
    port: int, pid: int, mode: str, requests: int, concurrency: int
) -> list[dict[str, Any]]:
    stream = mode == "sse"
    body = (BODY % (model_name(f"instant-{mode}"), "true" if stream else "false")).encode()
    payload = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    )
    loop = asyncio.get_running_loop()
    sent = 0
    curve: list[dict[str, Any]] = []
    started = time.monotonic()
    marks = sorted({FIRST, *range(0, requests + 1, max(requests // 10, 1))} - {0})

    async def connection() -> None:
        nonlocal sent
        _, client = await loop.create_connection(Client, "127.0.0.1", port)
        try:
            while sent < requests:
                sent += 1
                number = sent
                status, tail = await client.request(payload)
                if status != 200 or (stream and not tail.endswith(b"data: [DONE]\n\n")):
                    sys.exit(f"request {number}: {status} {tail!r}")
                if marks and number >= marks[0]:
                    marks.pop(0)
                    point = {
                        "requests": number,
                        "rss_kib": rss_kib(pid),
                        "seconds": round(time.monotonic() - started, 1),
                    }
                    curve.append(point)
                    print(f"  {mode} {number:>7} requests: RSS {point['rss_kib'] / 1024:7.1f} MiB")
        finally:
            client.transport.close()  # type: ignore[union-attr]

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--modes", default="sse,json")
    parser.add_argument(
        "--as-shipped", action="store_true", help="keep the generations store's default bound"
    )
    args = parser.parse_args()
    executable = os.environ.get("SWITCHBOARD", str(ROOT / ".venv/bin/switchboard"))
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="switchboard-soak-") as tmp_s:
        tmp = Path(tmp_s)
        try:
            ports = {name: free_port() for name in NAMES}
            start_nginx(tmp, ports)
            port = free_port()
            # the generations store keeps up to 100,000 past requests by design (about a
            # KiB each): bounded to 1,000 here, so what grows is what nothing bounds
            extra = "" if args.as_shipped else "generations: {memory_max_entries: 1000}\n"
            gateway = start_gateway(tmp, ports, port, "memory://", executable, "", extra=extra)
            print(f"gateway pid {gateway.pid}, RSS at start {rss_kib(gateway.pid) / 1024:.1f} MiB")
            for mode in args.modes.split(","):
                curve = uvloop.run(soak(port, gateway.pid, mode, args.requests, args.concurrency))
                first = next(p for p in curve if p["requests"] >= FIRST)["rss_kib"]
                last = curve[-1]["rss_kib"]
                growth = (last - first) / first
                results[mode] = {"curve": curve, "growth": growth, "ok": growth <= BOUND}
                print(
                    f"{mode}: RSS {first / 1024:.1f} MiB after {FIRST:,} requests, "
                    f"{last / 1024:.1f} MiB after {curve[-1]['requests']:,}: {growth:+.1%} "
                    f"({'within' if growth <= BOUND else 'OVER'} the {BOUND:.0%} bound)"
                )
        finally:
            stop_all()
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "soak.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {(out / 'soak.json').relative_to(ROOT)}")
    sys.exit(0 if all(r["ok"] for r in results.values()) else 1)


if __name__ == "__main__":
    main()
