"""What observability does around each HTTP request, called by the gateway's middleware:
count it in flight, give an API request its span (tracing on), and hand the request log
its record once the request has left (with the bodies, when `logging.bodies` asks).

With tracing off and no bodies to gather, a request costs two integer updates and, when
it had an account, one list append."""

from __future__ import annotations

from typing import cast

from litestar.types import ASGIApp, HTTPScope, Message, Receive, ReceiveMessage, Scope, Send

from gateway.accounting import Accounts
from gateway.config import Config
from gateway.metrics import InFlight
from gateway.observability.request_log import RequestLog
from gateway.observability.tracing import Tracing, open_tracing


class _Bodies:
    """The request's body as received and its answer as sent, each cut at `limit`."""

    __slots__ = ("limit", "request", "response")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.request = bytearray()
        self.response = bytearray()

    def add(self, into: bytearray, data: bytes) -> None:
        room = self.limit - len(into)
        if room > 0:
            into += data[:room]


def open_watch(config: Config) -> RequestWatch:
    """As the config asks: the request log unless `logging.requests: false`, tracing only
    with a `tracing` section (ConfigError if its extra is missing)."""
    return RequestWatch(
        InFlight(),
        open_tracing(config.tracing, config.providers),
        RequestLog(config.logging) if config.logging.requests else None,
    )


class RequestWatch:
    def __init__(
        self,
        in_flight: InFlight | None = None,
        tracing: Tracing | None = None,
        request_log: RequestLog | None = None,
    ) -> None:
        self.in_flight = in_flight or InFlight()
        self.tracing = tracing
        self.request_log = request_log
        self._bodies = request_log is not None and request_log.bodies

    async def __call__(
        self,
        app: ASGIApp,
        scope: Scope,
        receive: Receive,
        send: Send,
        traceparent: str | None,
        tracestate: str | None,
    ) -> None:
        in_flight = self.in_flight
        in_flight.count += 1
        bodies: _Bodies | None = None
        try:
            if self._bodies:
                assert self.request_log is not None
                bodies = _Bodies(self.request_log.max_body_bytes)
                receive, send = _gathering(bodies, receive, send)
            if self.tracing is None:
                await app(scope, receive, send)
            else:
                await _traced(self.tracing, app, scope, receive, send, traceparent, tracestate)
        finally:
            in_flight.count -= 1
            if self.request_log is not None:
                account = Accounts.current(scope)
                if account is not None and account.record is not None:
                    if bodies is None:
                        self.request_log.add(account.record)
                    else:
                        self.request_log.add(
                            account.record, bytes(bodies.request), bytes(bodies.response)
                        )


def _gathering(bodies: _Bodies, receive: Receive, send: Send) -> tuple[Receive, Send]:
    async def receive_gathering() -> ReceiveMessage:
        message = await receive()
        if message["type"] == "http.request":
            bodies.add(bodies.request, message.get("body", b""))
        return message

    async def send_gathering(message: Message) -> None:
        if message["type"] == "http.response.body":
            bodies.add(bodies.response, message.get("body", b""))
        await send(message)

    return receive_gathering, send_gathering


async def _traced(
    tracing: Tracing,
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    traceparent: str | None,
    tracestate: str | None,
) -> None:
    """The request inside its span, which ends with what its account recorded."""
    http = cast("HTTPScope", scope)
    started = tracing.request_started(http["method"], http["path"], traceparent, tracestate)
    if started is None:  # a path that is not traced
        await app(scope, receive, send)
        return
    status = 500  # if the app fails before it answers

    async def send_noting_status(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    try:
        await app(scope, receive, send_noting_status)
    finally:
        account = Accounts.current(scope)
        tracing.request_ended(started, status, account.record if account else None)
