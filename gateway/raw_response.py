"""A bytes answer sent straight to the ASGI server.

The hot path already holds the final JSON bytes and a handful of headers; Litestar's
`Response` would rebuild both through its header containers on every request.
"""

from __future__ import annotations

from litestar.types import Receive, Scope, Send

_JSON = (b"content-type", b"application/json")


class JSONBytes:
    __slots__ = ("_body", "_headers", "_status")

    def __init__(self, body: bytes, headers: dict[str, str], status: int = 200) -> None:
        self._body = body
        self._status = status
        self._headers = [
            _JSON,
            (b"content-length", str(len(body)).encode()),
            *((name.encode(), value.encode()) for name, value in headers.items()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self._status, "headers": self._headers}
        )
        await send({"type": "http.response.body", "body": self._body, "more_body": False})
