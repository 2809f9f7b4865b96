"""The pooled HTTP client every adapter calls upstream through.

This is the only module that knows which HTTP library is on the hot path, and the only
place that maps that library's exceptions to ours. aiohttp was chosen by `make bench`
(docs/operations.md#performance): equal to or faster than httpx in every run, and httpx
with its default pool (20 keep-alive connections) falls behind under concurrency.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import aiohttp
import msgspec
from yarl import URL

from providers.errors import (
    ProviderError,
    UpstreamConnectFailed,
    UpstreamProtocolError,
    UpstreamStreamCut,
    UpstreamTimeout,
)


class Timeouts(msgspec.Struct, frozen=True):
    total: float  # seconds for a whole non-streaming attempt
    connect: float
    read: float  # longest silence between two reads (streams have no total)


class UpstreamReply(msgspec.Struct):
    status: int
    headers: Mapping[str, str]
    body: bytes


class UpstreamStream:
    """An open streaming response; read its status and headers, then its body."""

    __slots__ = ("_provider", "_response")

    def __init__(self, response: aiohttp.ClientResponse, provider: str) -> None:
        self._response = response
        self._provider = provider

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except Exception as exc:
            raise map_exception(exc, self._provider) from exc

    async def blocks(self) -> AsyncIterator[bytes]:
        """The body as it arrives: each block is everything received since the last one,
        so a reader can handle what is already here before it waits again."""
        content = self._response.content
        try:
            while block := await content.readany():
                yield block
        except Exception as exc:
            raise map_exception(exc, self._provider) from exc


def map_exception(exc: BaseException, provider: str) -> ProviderError:
    """The one place where transport exceptions become our typed errors."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return UpstreamTimeout(f"timed out connecting to {provider}", provider=provider)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return UpstreamTimeout(f"{provider} did not answer in time", provider=provider)
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.InvalidURL):
        return UpstreamConnectFailed(f"could not connect to {provider}", provider=provider)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return UpstreamStreamCut(f"{provider} closed the connection mid-answer", provider=provider)
    if isinstance(exc, aiohttp.ClientConnectionError):
        return UpstreamConnectFailed(f"connection to {provider} failed", provider=provider)
    return UpstreamProtocolError(
        f"{provider} sent an invalid HTTP response ({type(exc).__name__})", provider=provider
    )


def _as_built(url: str) -> URL:
    """Send the URL exactly as the adapter built it: yarl would otherwise normalise it
    (`%3A` back to `:`), and a signed request (Bedrock's SigV4) must go out as signed."""
    return URL(url, encoded=True)


# how long the end of a body whose content was all read may take to arrive
_DRAIN_SECONDS = 5.0


def _release_or_close(response: aiohttp.ClientResponse) -> None:
    if response.content.at_eof():
        response.release()  # back to the pool for the next request
    else:
        # dropping the connection is what tells the upstream to stop generating tokens
        # nobody will read (client gone, or we gave up on the stream)
        response.close()


async def _drain(response: aiohttp.ClientResponse) -> None:
    """Read the rest of a finished stream's body so its connection can be pooled; one
    that keeps coming or breaks is closed instead."""
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            while await response.content.readany():
                pass
    except Exception:  # timed out or broken: closed just below
        pass
    finally:
        _release_or_close(response)


class UpstreamHTTP:
    """One pooled client per provider, created lazily inside the running event loop."""

    def __init__(self, provider: str, timeouts: Timeouts, max_connections: int = 1000) -> None:
        self.provider = provider
        self._timeouts = timeouts
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._call_timeout = aiohttp.ClientTimeout(
            total=timeouts.total, connect=timeouts.connect, sock_read=timeouts.read
        )
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, connect=timeouts.connect, sock_read=timeouts.read
        )
        self._draining: set[asyncio.Task[None]] = set()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, limit_per_host=0, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._call_timeout,
                # upstream bodies are passed through as bytes; no cookies between tenants
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=True,
            )
        return self._session

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> UpstreamReply:
        try:
            async with self._client().post(_as_built(url), data=body, headers=headers) as response:
                return UpstreamReply(response.status, response.headers, await response.read())
        except Exception as exc:
            raise map_exception(exc, self.provider) from exc

    @asynccontextmanager
    async def open_stream(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> AsyncIterator[UpstreamStream]:
        """Leaving the context on an error (or the reader's being closed) closes the
        upstream connection, even mid-stream."""
        try:
            response = await self._client().post(
                _as_built(url), data=body, headers=headers, timeout=self._stream_timeout
            )
        except Exception as exc:
            raise map_exception(exc, self.provider) from exc
        try:
            yield UpstreamStream(response, self.provider)
        except BaseException:
            _release_or_close(response)
            raise
        if response.content.at_eof():
            response.release()  # back to the pool for the next request
        else:
            # the reader stopped at its protocol's end marker (`[DONE]`, `message_stop`)
            # with the body's own end still in flight: closing here would cost the next
            # request a new connection (and TLS handshake), so wait for it off the answer's
            # path, then pool the connection
            task = asyncio.get_running_loop().create_task(_drain(response))
            self._draining.add(task)
            task.add_done_callback(self._draining.discard)

    async def aclose(self) -> None:
        for task in list(self._draining):
            task.cancel()
        await asyncio.gather(*self._draining, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
