"""A load client that sees a stream as its reader does (wrk sees only a response's end).

N keep-alive connections each send `POST /v1/chat/completions` with `"stream": true`
back to back for a while. For every answer it notes, as the bytes arrive: the time to
the first event (not to the headers, which a pass-through may send before the upstream
has produced anything), the time each SSE event arrived (events are counted at their
blank line, so an event split over reads counts when it is whole), and the time to the
end. From those: per-request latency percentiles, time to first event, and the gaps
between consecutive events of one stream. With an upstream that sends an event every
2 ms, a proxy that held an event back until the next one arrived shows gaps of ~0 ms
next to gaps of ~4 ms; one that delays every event shows a larger time to first event.

Runs on uvloop with httptools (both already in the gateway's environment); prints one
line: `BENCH_STREAM {json}`.

usage: python bench/stream_client.py URL MODEL CONCURRENCY SECONDS
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import httptools
import uvloop

BODY = (
    '{"model": "%s", "messages": ['
    '{"role": "system", "content": "You are a terse assistant."}, '
    '{"role": "user", "content": "Say hello in five words."}], '
    '"max_tokens": 32, "stream": true}'
)


class Totals:
    """What all connections saw, in seconds."""

    def __init__(self) -> None:
        self.latency: list[float] = []
        self.first_event: list[float] = []
        self.gaps: list[float] = []
        self.non_2xx = 0
        self.errors = 0
        self.measuring = True


class Connection(asyncio.Protocol):
    """One keep-alive connection, one request at a time; httptools calls back into it."""

    def __init__(self, totals: Totals) -> None:
        self.totals = totals
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.done: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.now = 0.0
        self._reset(0.0)

    def _reset(self, sent: float) -> None:
        self.sent = sent
        self.events: list[float] = []
        self.newline_at_end = False  # the last body part ended in "\n"

    def request(self, payload: bytes) -> asyncio.Future[None]:
        assert self.transport is not None
        self.done = asyncio.get_running_loop().create_future()
        self._reset(time.perf_counter())
        self.transport.write(payload)
        return self.done

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.now = time.perf_counter()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        self._fail(ConnectionError("connection closed"))

    def _fail(self, exc: Exception) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc)

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        blanks = body.count(b"\n\n") + (self.newline_at_end and body[:1] == b"\n")
        self.newline_at_end = body[-1:] == b"\n"
        self.events.extend([self.now] * blanks)

    def on_message_complete(self) -> None:
        totals = self.totals
        status = self.parser.get_status_code()
        if totals.measuring:
            if status != 200:
                totals.non_2xx += 1
            elif self.events:
                events = self.events
                totals.latency.append(self.now - self.sent)
                totals.first_event.append(events[0] - self.sent)
                totals.gaps.extend(b - a for a, b in itertools.pairwise(events))
        if self.done is not None and not self.done.done():
            self.done.set_result(None)


async def worker(host: str, port: int, payload: bytes, totals: Totals, until: float) -> None:
    loop = asyncio.get_running_loop()
    connection: Connection | None = None
    while time.perf_counter() < until:
        if connection is None or connection.closed.done():
            _, connection = await loop.create_connection(lambda: Connection(totals), host, port)
        try:
            await asyncio.wait_for(connection.request(payload), 10)
        except (OSError, ConnectionError, TimeoutError, httptools.HttpParserError):
            if totals.measuring:
                totals.errors += 1
            if connection.transport is not None:
                connection.transport.close()
            connection = None
    if connection is not None and connection.transport is not None:
        connection.transport.close()


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def run(url: str, model: str, concurrency: int, seconds: float) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = (BODY % model).encode()
    payload = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
        + (f"Authorization: Bearer {key}\r\n" if (key := os.environ.get("BENCH_KEY")) else "")
        + f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    totals = Totals()
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(worker(host, port, payload, totals, until) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    totals.measuring = False
    ms = 1000.0
    return {
        "requests": len(totals.latency),
        "rps": round(len(totals.latency) / elapsed, 1),
        "p50_ms": round(percentile(totals.latency, 0.5) * ms, 2),
        "p99_ms": round(percentile(totals.latency, 0.99) * ms, 2),
        "max_ms": round(max(totals.latency, default=0.0) * ms, 2),
        "first_event_p50_ms": round(percentile(totals.first_event, 0.5) * ms, 2),
        "first_event_p99_ms": round(percentile(totals.first_event, 0.99) * ms, 2),
        "gap_p50_ms": round(percentile(totals.gaps, 0.5) * ms, 2),
        "gap_p99_ms": round(percentile(totals.gaps, 0.99) * ms, 2),
        "gap_max_ms": round(max(totals.gaps, default=0.0) * ms, 2),
        # share of gaps under 0.5 ms: events that left together although the upstream
        # sent them 2 ms apart
        "bunched": round(sum(g < 0.0005 for g in totals.gaps) / max(1, len(totals.gaps)), 3),
        "non_2xx": totals.non_2xx,
        "errors": totals.errors,
    }


def main() -> None:
    url, model = sys.argv[1], sys.argv[2]
    concurrency, seconds = int(sys.argv[3]), float(sys.argv[4])
    result = uvloop.run(run(url, model, concurrency, seconds))
    print("BENCH_STREAM " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
