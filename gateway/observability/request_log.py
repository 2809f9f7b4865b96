"""The request log: one JSON line per request, written in batches off the request path.

A line is added when the request has left entirely (its last byte sent, or the client
gone), from the record its account made, so that with `logging.bodies` it can also hold
the body as received and the answer as sent. Adding is an append; a background task
encodes and writes what gathered every 0.1 s, in a worker thread, so a slow pipe or disk
never holds up the event loop. The format is documented in docs/observability.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sys
from datetime import UTC, datetime
from typing import IO

import msgspec
from msgspec import Raw

from gateway.accounting import RequestRecord
from gateway.observability.config import RequestLogConfig
from routing.metadata import Attempt

log = logging.getLogger("switchboard.request_log")

WRITE_EVERY = 0.1  # seconds between writes
BATCH_LIMIT = 4096  # lines that wake the writer before its time
_raw = msgspec.json.Decoder(Raw)


class RequestLine(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One line. Every field is always there (null when it does not apply), except the
    bodies, which are there only with `logging.bodies: true`."""

    ts: str  # when the request arrived, UTC, ISO 8601 with milliseconds
    request_id: str
    endpoint: str
    key: str | None
    team: str | None
    model: str | None  # as the client asked
    stream: bool
    status: int
    error_code: str | None
    provider: str | None  # the deployment that served it
    deployment: str | None  # that provider's model id
    model_canonical: str | None
    strategy: str | None
    duration_ms: float  # arrival to the last byte, as the client waited
    latency_ms: float | None  # the serving try alone
    ttft_ms: float | None
    tokens_per_second: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float
    cost_estimated: bool
    replayed: bool
    attempts: list[Attempt]  # the failed tries, in order
    request_body: Raw | str | None = None
    response_body: Raw | str | None = None


def line_of(
    record: RequestRecord, request_body: bytes | None = None, response_body: bytes | None = None
) -> RequestLine:
    metadata = record.routing_metadata
    usage = record.usage
    return RequestLine(
        ts=timestamp(record.started_at),
        request_id=record.request_id,
        endpoint=record.endpoint,
        key=record.key,
        team=record.team,
        model=record.model,
        stream=record.stream,
        status=record.status,
        error_code=record.error_code,
        provider=metadata.provider if metadata else None,
        deployment=metadata.provider_model_id if metadata else None,
        model_canonical=metadata.model_canonical if metadata else None,
        strategy=metadata.routing_strategy if metadata else None,
        duration_ms=record.duration_ms,
        latency_ms=metadata.latency_ms if metadata else None,
        ttft_ms=metadata.ttft_ms if metadata else None,
        tokens_per_second=metadata.throughput_tps if metadata else None,
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        cost_usd=record.cost_usd,
        cost_estimated=record.cost_estimated,
        replayed=record.replayed,
        attempts=record.attempts,
        request_body=None if request_body is None else _body(request_body),
        response_body=None if response_body is None else _body(response_body),
    )


def timestamp(epoch: float) -> str:
    """`datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")`, with the
    date and time formatted once per second rather than per line. Within a microsecond
    of a millisecond's edge, datetime's own rounding decides."""
    second, fraction = divmod(epoch, 1.0)
    ms, rest = divmod(fraction * 1000, 1.0)
    if 0.001 < rest < 0.999:
        return f"{_second(int(second))}.{int(ms):03d}+00:00"
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


@functools.lru_cache(maxsize=8)
def _second(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")[:-6]


def _body(data: bytes) -> Raw | str:
    """JSON as it was (nested in the line), anything else (an SSE stream, a body cut at
    `max_body_bytes`, not JSON) as a string."""
    try:
        return _raw.decode(data)
    except msgspec.DecodeError:
        return data.decode("utf-8", "replace")


class _Output:
    """Where lines go: stdout, stderr, or a file reopened when rotation moves it."""

    def __init__(self, target: str) -> None:
        self._target = target
        self._file: IO[bytes] | None = None
        self._inode: int | None = None

    def write(self, data: bytes) -> None:
        if self._target in ("stdout", "stderr"):
            # looked up each time: the process's stream may be replaced (tests, daemons)
            stream = sys.stdout if self._target == "stdout" else sys.stderr
            stream.buffer.write(data)
            stream.flush()
            return
        self._reopen_if_moved()
        assert self._file is not None
        self._file.write(data)
        self._file.flush()

    def _reopen_if_moved(self) -> None:
        try:
            inode: int | None = os.stat(self._target).st_ino
        except FileNotFoundError:
            inode = None
        if self._file is not None and inode == self._inode:
            return
        if self._file is not None:
            self._file.close()
        self._file = open(self._target, "ab")  # noqa: SIM115 - kept open between writes
        self._inode = os.fstat(self._file.fileno()).st_ino

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class RequestLog:
    def __init__(self, config: RequestLogConfig) -> None:
        self.config = config
        self.bodies = config.bodies
        self._max_body = config.max_body_bytes
        self._pending: list[tuple[RequestRecord, bytes | None, bytes | None]] = []
        self._out = _Output(config.output)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writing = asyncio.Lock()

    # --- the request path -------------------------------------------------------------

    def add(
        self,
        record: RequestRecord,
        request_body: bytes | None = None,
        response_body: bytes | None = None,
    ) -> None:
        """A request that has left. The bodies only with `logging.bodies` (cut to
        `max_body_bytes` by whoever gathered them)."""
        self._pending.append((record, request_body, response_body))
        if len(self._pending) >= BATCH_LIMIT:
            self._wake.set()

    @property
    def max_body_bytes(self) -> int:
        return self._max_body

    # --- the writer -------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="request-log")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()  # what is still gathered is written at shutdown
        self._out.close()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), WRITE_EVERY)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write what has gathered now (tests, shutdown)."""
        async with self._writing:
            batch, self._pending = self._pending, []
            if batch:
                try:
                    await asyncio.to_thread(self._write, batch)
                except Exception:  # a full disk or a closed pipe must not stop the gateway
                    log.exception("request log: %d lines could not be written", len(batch))

    def _write(self, batch: list[tuple[RequestRecord, bytes | None, bytes | None]]) -> None:
        encode = msgspec.json.encode
        self._out.write(b"".join(encode(line_of(*entry)) + b"\n" for entry in batch))
