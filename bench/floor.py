"""The floor: the least a gateway on our stack can do, measured beside it by `make bench`.

A Litestar app with one route, `POST /v1/chat/completions`, that reads the body's `model`
and `stream` with msgspec, forwards the body unchanged to that model's upstream through a
pooled aiohttp session (configured as `providers/http_client.py` configures its own), and
passes the answer back: a JSON body whole, a stream block by block as it arrives. It does
nothing else: no auth, no request id, no routing, no metadata, no metrics.

It is served exactly as `switchboard serve` serves the gateway (uvicorn, uvloop,
httptools, no access log, no proxy headers, no server header), so the gateway's figures
divided by its figures measure what the gateway's own work costs. Keep it honest: it
uses nothing the gateway could not use (it is the same stack, configured the same way),
and it must not skip what a correct pass-through needs (a client that leaves closes the
upstream request; a failed upstream answer is passed on with its status).

usage: python bench/floor.py PORT UPSTREAMS_JSON   ({"model name": "upstream URL", ...})
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import msgspec
from litestar import Litestar, Request, post
from litestar.datastructures import State
from litestar.types import ASGIApp, Receive, Scope, Send

# what the gateway sends an openai upstream: the body's type and the provider key
JSON_HEADERS = {"content-type": "application/json", "authorization": "Bearer bench"}
STREAM_HEADERS = {**JSON_HEADERS, "accept": "text/event-stream"}
# the gateway's defaults for an openai provider: 60 s per attempt, 5 s to connect
CALL_TIMEOUT = aiohttp.ClientTimeout(total=60, connect=5, sock_read=60)
STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=5, sock_read=60)


class Target(msgspec.Struct):
    """All the floor reads of a request: where it goes, and whether it streams."""

    model: str
    stream: bool = False


_target = msgspec.json.Decoder(Target)


def _headers(content_type: bytes, extra: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", content_type), *extra]


class Whole:
    """A complete answer, sent in one body message."""

    __slots__ = ("_body", "_status")

    def __init__(self, status: int, body: bytes) -> None:
        self._status, self._body = status, body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = (b"content-length", str(len(self._body)).encode())
        headers = _headers(b"application/json", [length])
        await send({"type": "http.response.start", "status": self._status, "headers": headers})
        await send({"type": "http.response.body", "body": self._body, "more_body": False})


class Passthrough:
    """A stream sent on as it arrives. A client that leaves cancels the copy, and the
    upstream connection is then closed (not pooled), which stops the generation."""

    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        copying = asyncio.current_task()
        assert copying is not None
        gone = False

        def on_message(listener: asyncio.Future[Any]) -> None:
            nonlocal gone
            # the request body is already read: the next message is the disconnect
            if not listener.cancelled() and listener.result()["type"] == "http.disconnect":
                gone = True
                copying.cancel()

        listener = asyncio.ensure_future(receive())
        listener.add_done_callback(on_message)
        response = self._response
        headers = _headers(b"text/event-stream", [(b"cache-control", b"no-cache")])
        try:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            content = response.content
            while block := await content.readany():
                await send({"type": "http.response.body", "body": block, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            response.close()  # not pooled: closing it stops the upstream
            if not gone:
                raise
            copying.uncancel()  # the client left: nothing went wrong here
        finally:
            listener.remove_done_callback(on_message)
            listener.cancel()
            response.release()


def create_app(upstreams: dict[str, str]) -> Litestar:
    session: aiohttp.ClientSession | None = None

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        nonlocal session
        connector = aiohttp.TCPConnector(limit=1000, limit_per_host=0, ttl_dns_cache=300)
        session = aiohttp.ClientSession(
            connector=connector,
            timeout=CALL_TIMEOUT,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True,
        )
        try:
            yield
        finally:
            await session.close()

    @post("/v1/chat/completions", status_code=200)
    async def chat(request: Request[object, object, State]) -> ASGIApp:
        assert session is not None
        body = await request.body()
        target = _target.decode(body)
        url = upstreams[target.model]
        if not target.stream:
            async with session.post(url, data=body, headers=JSON_HEADERS) as reply:
                return Whole(reply.status, await reply.read())
        response = await session.post(
            url, data=body, headers=STREAM_HEADERS, timeout=STREAM_TIMEOUT
        )
        if response.status != 200:
            async with response:
                return Whole(response.status, await response.read())
        return Passthrough(response)

    return Litestar(
        route_handlers=[chat],
        lifespan=[lifespan],
        openapi_config=None,
        logging_config=None,
        debug=False,
    )


def main() -> None:
    import uvicorn

    port, upstreams = int(sys.argv[1]), json.loads(sys.argv[2])
    print(f"floor: serving on http://127.0.0.1:{port}", flush=True)
    # the settings `switchboard serve` starts uvicorn with (gateway/cli.py)
    uvicorn.run(
        create_app(upstreams),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=10,
        proxy_headers=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
