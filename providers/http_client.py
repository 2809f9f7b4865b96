"""The pooled HTTP client every adapter calls upstream through.

This is the only module that knows which HTTP library is on the hot path, and the only
place that maps that library's exceptions to ours. aiohttp was chosen by `make bench`
(docs/performance.md#earlier-measurements): equal to or faster than httpx in every run, and httpx
with its default pool (20 keep-alive connections) falls behind under concurrency.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import aiohttp
import msgspec
from yarl import URL

from providers.correlation import upstream_headers
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
    # set when the status is not a success: for `annotate`
    host: str | None = None
    excerpt: str | None = None

    def annotate(self, error: ProviderError) -> ProviderError:
        """The adapter's classification of this reply, with where it came from and what
        the upstream said, for the log."""
        error.upstream_host = error.upstream_host or self.host
        error.upstream_body = error.upstream_body or self.excerpt
        return error


class UpstreamStream:
    """An open streaming response; read its status and headers, then its body."""

    __slots__ = ("_http", "_response", "body")

    def __init__(self, response: aiohttp.ClientResponse, http: UpstreamHTTP) -> None:
        self._response = response
        self._http = http
        self.body: bytes | None = None  # what `read()` returned

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    async def read(self) -> bytes:
        try:
            self.body = await self._response.read()
        except Exception as exc:
            raise self._http.map_exception(exc, self._response.url.host) from exc
        return self.body

    async def blocks(self) -> AsyncIterator[bytes]:
        """The body as it arrives: each block is everything received since the last one,
        so a reader can handle what is already here before it waits again."""
        content = self._response.content
        try:
            while block := await content.readany():
                yield block
        except Exception as exc:
            raise self._http.map_exception(exc, self._response.url.host) from exc


def map_exception(
    exc: BaseException, provider: str, timeouts: Timeouts | None = None
) -> ProviderError:
    """The one place where transport exceptions become our typed errors. The client sees
    the message; `detail` (for the log) says what a person can act on."""
    if isinstance(exc, ProviderError):
        return exc
    error = _error_for(exc, provider)
    error.detail = _transport_detail(exc, timeouts)
    return error


def _error_for(exc: BaseException, provider: str) -> ProviderError:
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


def _transport_detail(exc: BaseException, timeouts: Timeouts | None) -> str:
    """What happened on the wire, phrased for whoever must fix it."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        limit = f" within {timeouts.connect:g} s (connect_timeout)" if timeouts else ""
        return f"no connection{limit}"
    if isinstance(exc, aiohttp.SocketTimeoutError):
        limit = f" for {timeouts.read:g} s (read_timeout)" if timeouts else ""
        return f"nothing received{limit}"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        limit = f" within {timeouts.total:g} s (timeout)" if timeouts else ""
        return f"no complete answer{limit}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve {exc.host} ({exc.strerror or exc.os_error})"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS with {exc.host}:{exc.port} failed ({exc.os_error})"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return f"connection refused ({exc.host}:{exc.port})"
        return f"cannot connect to {exc.host}:{exc.port} ({exc.strerror or exc.os_error})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the upstream closed the connection before the answer was complete"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"the body was cut short ({_cut(str(exc))})"
    return f"{type(exc).__name__}: {_cut(str(exc))}" if str(exc) else type(exc).__name__


# how much of a failed answer's body the log keeps
_EXCERPT_CHARS = 300
_SPACES = re.compile(r"\s+")
# request headers that carry a credential: their values are cut out of any excerpt (an
# upstream's error page may echo what it was sent)
_CREDENTIAL_HEADERS = frozenset(
    ("authorization", "x-api-key", "api-key", "x-goog-api-key", "proxy-authorization")
)


def _cut(text: str) -> str:
    text = _SPACES.sub(" ", text).strip()
    return text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + "…"


def failure_excerpt(status: int, body: bytes, sent: Mapping[str, str]) -> str | None:
    """The start of a failed answer's body, for the log: never for 401/403 (those often
    quote the key), and never with a credential we sent in it."""
    if status in (401, 403) or not body:
        return None
    text = body[: _EXCERPT_CHARS * 4].decode("utf-8", "replace")
    for name, value in sent.items():
        if name.lower() in _CREDENTIAL_HEADERS:
            for secret in (value, value.partition(" ")[2]):
                if len(secret) >= 8:
                    text = text.replace(secret, "[redacted]")
    return _cut(text)


@functools.lru_cache(maxsize=1024)
def _as_built(url: str) -> URL:
    """Send the URL exactly as the adapter built it: yarl would otherwise normalise it
    (`%3A` back to `:`), and a signed request (Bedrock's SigV4) must go out as signed."""
    # cached: an adapter sends most calls to one URL, and a URL is immutable
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

    def __init__(
        self,
        provider: str,
        timeouts: Timeouts,
        max_connections: int = 1000,
        request_id_headers: tuple[str, ...] = ("x-request-id",),
    ) -> None:
        self.provider = provider
        # the headers this upstream's API reads a caller's request id from
        self._request_id_headers = request_id_headers
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

    def _correlated(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        """The adapter's headers plus the request's id and trace context, so that the
        upstream's own logs can be matched with ours."""
        extra = upstream_headers(self._request_id_headers)
        return {**headers, **extra} if extra else headers

    def map_exception(self, exc: BaseException, host: str | None) -> ProviderError:
        error = map_exception(exc, self.provider, self._timeouts)
        error.upstream_host = error.upstream_host or host
        return error

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> UpstreamReply:
        target = _as_built(url)
        headers = self._correlated(headers)
        try:
            async with self._client().post(target, data=body, headers=headers) as response:
                reply = UpstreamReply(response.status, response.headers, await response.read())
        except Exception as exc:
            raise self.map_exception(exc, target.host) from exc
        if reply.status >= 300:
            reply.host = target.host
            reply.excerpt = failure_excerpt(reply.status, reply.body, headers)
        return reply

    @asynccontextmanager
    async def open_stream(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> AsyncIterator[UpstreamStream]:
        """Leaving the context on an error (or the reader's being closed) closes the
        upstream connection, even mid-stream."""
        target = _as_built(url)
        headers = self._correlated(headers)
        try:
            response = await self._client().post(
                target, data=body, headers=headers, timeout=self._stream_timeout
            )
        except Exception as exc:
            raise self.map_exception(exc, target.host) from exc
        stream = UpstreamStream(response, self)
        try:
            yield stream
        except ProviderError as error:
            # the adapter's classification of a failed status, or of what the body said
            _release_or_close(response)
            error.upstream_host = error.upstream_host or target.host
            if stream.body is not None and response.status >= 300:
                error.upstream_body = error.upstream_body or failure_excerpt(
                    response.status, stream.body, headers
                )
            raise
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
