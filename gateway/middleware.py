"""ASGI middleware: the request id every answer carries, and the request's correlation
(its id and W3C trace context) for the upstream calls and log lines it causes; what
observability does around each request is `watch`'s (gateway/observability/watch.py)."""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from gateway.observability.watch import RequestWatch
from gateway.request_ids import acceptable_request_id, new_request_id
from providers import correlation
from providers.correlation import Correlation, valid_traceparent, valid_tracestate

_HEADER = b"x-request-id"
_TRACEPARENT = b"traceparent"
_TRACESTATE = b"tracestate"


def request_id_middleware(app: ASGIApp, watch: RequestWatch | None = None) -> ASGIApp:
    """Adopt the caller's `x-request-id` (when sane) or make one; store it in the scope for
    handlers and add it to every response."""
    observe = watch or RequestWatch()

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
                for name, _ in headers:  # a loop, not any(): this runs on every answer
                    if name.lower() == _HEADER:
                        break
                else:
                    headers.append(header)
                message["headers"] = headers
            await send(message)

        # a tracestate means nothing without the traceparent it goes with
        tracestate = valid_tracestate(tracestate) if traceparent else None
        token = correlation.set_current(
            Correlation(request_id=request_id, traceparent=traceparent, tracestate=tracestate)
        )
        try:
            await observe(app, scope, receive, send_with_id, traceparent, tracestate)
        finally:
            correlation.reset(token)

    return middleware
