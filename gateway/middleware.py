"""ASGI middleware: the request id every answer carries, and the request's correlation
(its id and W3C trace context) for the upstream calls and log lines it causes."""

from __future__ import annotations

from typing import cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from gateway.accounting import Accounts
from gateway.metrics import InFlight
from gateway.observability.tracing import Tracing
from gateway.request_ids import acceptable_request_id, new_request_id
from providers import correlation
from providers.correlation import Correlation, valid_traceparent, valid_tracestate

_HEADER = b"x-request-id"
_TRACEPARENT = b"traceparent"
_TRACESTATE = b"tracestate"


def request_id_middleware(
    app: ASGIApp, in_flight: InFlight | None = None, tracing: Tracing | None = None
) -> ASGIApp:
    """Adopt the caller's `x-request-id` (when sane) or make one; store it in the scope for
    handlers and add it to every response. `in_flight` counts the requests being served;
    `tracing`, when on, gives each API request its span."""
    counter = in_flight or InFlight()

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        request_id = traceparent = tracestate = None
        for name, value in scope["headers"]:
            if name == _HEADER:
                request_id = acceptable_request_id(value.decode("latin-1"))
            elif name == _TRACEPARENT:
                traceparent = valid_traceparent(value.decode("latin-1"))
            elif name == _TRACESTATE:
                tracestate = value.decode("latin-1")
        request_id = request_id or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        header = (_HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(name.lower() == _HEADER for name, _ in headers):
                    headers.append(header)
                message["headers"] = headers
            await send(message)

        # a tracestate means nothing without the traceparent it goes with
        tracestate = valid_tracestate(tracestate) if traceparent else None
        token = correlation.set_current(
            Correlation(request_id=request_id, traceparent=traceparent, tracestate=tracestate)
        )
        counter.count += 1
        try:
            if tracing is None:
                await app(scope, receive, send_with_id)
            else:
                await _traced(tracing, app, scope, receive, send_with_id, traceparent, tracestate)
        finally:
            counter.count -= 1
            correlation.reset(token)

    return middleware


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
