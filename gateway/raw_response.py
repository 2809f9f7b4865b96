"""A bytes answer sent straight to the ASGI server.

The hot path already holds the final JSON bytes and a handful of headers; Litestar's
`Response` would rebuild both through its header containers on every request.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

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
            *encoded(headers),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self._status, "headers": self._headers}
        )
        await send({"type": "http.response.body", "body": self._body, "more_body": False})


def encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value.encode()) for name, value in headers.items()]


class ClientGone:
    """While a streamed answer is sent: cancels the task sending it when the client
    disconnects (the request's body is read, so the next message is the disconnect),
    which is what stops a stream whose client has left. Cheaper than a task group: one
    waiting `receive` and a callback. After a cancellation it caused, `left` is true and
    the task is uncancelled on the way out; the caller catches the `CancelledError`."""

    __slots__ = ("_listener", "_task", "left")

    def __init__(self, receive: Receive) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self.left = False
        self._listener: asyncio.Future[Any] = asyncio.ensure_future(receive())

    def _on_message(self, listener: asyncio.Future[Any]) -> None:
        if listener.cancelled() or listener.exception() is not None:
            return
        if listener.result()["type"] == "http.disconnect":
            self.left = True
            self._task.cancel()

    def __enter__(self) -> ClientGone:
        self._listener.add_done_callback(self._on_message)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # removed before the loop runs it: the server answers a finished response's
        # `receive` with a disconnect too
        self._listener.remove_done_callback(self._on_message)
        self._listener.cancel()
        if self.left:
            self._task.uncancel()
