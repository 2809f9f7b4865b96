"""A scriptable fake OpenAI Chat Completions upstream for end-to-end tests.

It is a real aiohttp server on 127.0.0.1 running in a background thread with its own
event loop: sync tests can block on it, and async tests keep their own loop free (the
gateway under test may run on that loop, so the mock must never share it).

Typical use::

    def test_retry(mock_upstream: MockUpstream) -> None:
        mock_upstream.enqueue(ErrorReply(429, "Rate limit reached", type="rate_limit_error"))
        ...  # point a provider's base_url at mock_upstream.url
        assert len(mock_upstream.requests) == 2
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict

DEFAULT_TEXT = "Hello from mock upstream"
DEFAULT_MODEL = "mock-model"
DEFAULT_ID = "chatcmpl-mock"
# The default stream splits DEFAULT_TEXT into these deltas; one "token" each.
DEFAULT_PIECES = ["Hello", " from", " mock", " upstream"]


# --------------------------------------------------------------------------- shapes


def make_usage(
    prompt_tokens: int = 10,
    completion_tokens: int = len(DEFAULT_PIECES),
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> dict[str, Any]:
    """An OpenAI `usage` object (total is always the sum, as upstream does)."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
    }


def chunk(
    content: str | None = None,
    role: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    finish_reason: str | None = None,
    model: str = DEFAULT_MODEL,
    id: str = DEFAULT_ID,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A `chat.completion.chunk` with one choice; the delta holds only the given fields."""
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    if role is not None:
        delta["refusal"] = None  # OpenAI sends this alongside the role delta
    if tool_calls is not None:
        delta["tool_calls"] = tool_calls
    out: dict[str, Any] = {
        "id": id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        out["usage"] = usage
    return out


def usage_chunk(
    usage: dict[str, Any] | None = None, model: str = DEFAULT_MODEL, id: str = DEFAULT_ID
) -> dict[str, Any]:
    """The trailing chunk sent when `stream_options.include_usage` is set: no choices."""
    out = chunk(model=model, id=id, usage=usage or make_usage())
    out["choices"] = []
    return out


def completion(
    content: str | None = DEFAULT_TEXT,
    tool_calls: list[dict[str, Any]] | None = None,
    finish_reason: str | None = None,
    model: str = DEFAULT_MODEL,
    id: str = DEFAULT_ID,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A non-streaming `chat.completion`. finish_reason None means "tool_calls" when
    tool_calls are given, else "stop"."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    if finish_reason is None:
        finish_reason = "tool_calls" if tool_calls else "stop"
    return {
        "id": id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
        ],
        "usage": usage or make_usage(),
    }


def default_chunks(
    model: str = DEFAULT_MODEL, include_usage: bool = False, prompt_tokens: int = 10
) -> list[dict[str, Any]]:
    """The chunks of the default stream: role delta, content deltas, stop, [usage]."""
    chunks = [chunk(role="assistant", content="", model=model)]
    chunks += [chunk(content=piece, model=model) for piece in DEFAULT_PIECES]
    chunks.append(chunk(finish_reason="stop", model=model))
    if include_usage:
        # With include_usage OpenAI puts `"usage": null` on every chunk but the last.
        for c in chunks:
            c["usage"] = None
        chunks.append(usage_chunk(make_usage(prompt_tokens=prompt_tokens), model=model))
    return chunks


def embedding_vector(index: int, dimensions: int = 4) -> list[float]:
    """The default embeddings answer's vectors: exact in float32, so a base64 round trip
    returns them unchanged."""
    return [round((index + 1) * 0.125 + i * 0.25, 3) for i in range(dimensions)]


def embedding_answer(
    vectors: list[list[float]],
    model: str = DEFAULT_MODEL,
    base64_encoded: bool = False,
    prompt_tokens: int = 5,
) -> dict[str, Any]:
    """An OpenAI embeddings answer (`encoding_format: base64`: little-endian float32)."""

    def encoded(vector: list[float]) -> list[float] | str:
        if not base64_encoded:
            return vector
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()

    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encoded(v)}
            for i, v in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def text_completion(
    text: str = DEFAULT_TEXT,
    finish_reason: str = "stop",
    model: str = DEFAULT_MODEL,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A legacy `text_completion` answer (POST /v1/completions)."""
    return {
        "id": "cmpl-mock",
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_mock",
        "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage or make_usage(),
    }


def text_chunks(model: str = DEFAULT_MODEL, include_usage: bool = False) -> list[dict[str, Any]]:
    """A legacy completion stream: one `text_completion` object per piece, the last with
    `finish_reason`, then (include_usage) one with `choices: []` and the usage."""
    chunks = []
    for i, piece in enumerate(DEFAULT_PIECES):
        chunk_ = text_completion(piece, model=model)
        chunk_["choices"][0]["finish_reason"] = "stop" if i == len(DEFAULT_PIECES) - 1 else None
        del chunk_["usage"]
        chunks.append(chunk_)
    if include_usage:
        closing = text_completion(model=model)
        closing["choices"] = []
        chunks.append(closing)
    return chunks


# --------------------------------------------------------------------------- replies


@dataclass
class JSONReply:
    """A JSON response; body None means a normal completion for the request."""

    body: dict[str, Any] | list[Any] | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class RawReply:
    """Arbitrary bytes: garbage, truncated JSON, HTML error pages from a proxy..."""

    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0


@dataclass
class ErrorReply:
    """The OpenAI error envelope {"error": {"message", "type", "param", "code"}}."""

    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class SSEReply:
    """A `text/event-stream` reply.

    chunks None means the default stream for the request. dict items are sent as
    `data: <json>\\n\\n`; str/bytes items are sent verbatim (comments, `event:` lines,
    multi-line data, garbage). `cut_after=N` sends N items then closes the connection
    mid-body (no terminating chunk, no [DONE]). include_usage None follows the
    request's stream_options; it only affects the default chunks.
    """

    chunks: list[dict[str, Any] | str | bytes] | None = None
    delay_between: float = 0.0
    first_delay: float = 0.0
    cut_after: int | None = None
    send_done: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    include_usage: bool | None = None


@dataclass
class HangReply:
    """Never answer (until the client disconnects or the server stops)."""


@dataclass
class ComputedReply:
    """The reply worked out from the request: for requests that arrive concurrently, whose
    order a FIFO queue cannot know."""

    make: Callable[[RecordedRequest], Reply]


Reply = JSONReply | RawReply | ErrorReply | SSEReply | HangReply | ComputedReply


def _client_port(request: web.Request) -> int | None:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return peer[1] if isinstance(peer, tuple) else None


@dataclass
class RecordedRequest:
    method: str
    path: str  # percent-decoded
    query: dict[str, str]
    headers: dict[str, str]  # keys lower-cased
    body: bytes
    json: Any  # decoded body, None when empty or not JSON
    raw_path: str = ""  # as it came on the wire (what a request signature covers)
    client_port: int | None = None  # one per connection: tells a pooled one from a new one


# --------------------------------------------------------------------------- server


class MockUpstream:
    def __init__(self) -> None:
        # One condition guards all state shared with the server thread and lets
        # sync callers wait for requests / disconnects.
        self._cond = threading.Condition()
        self._queue: deque[Reply] = deque()
        self._default: Reply | None = None
        self._requests: list[RecordedRequest] = []
        self._disconnects = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()  # only touched on the server loop
        self._stopping = False
        self.port = 0

    # ---- lifecycle

    @property
    def url(self) -> str:
        """Base URL to configure as an OpenAI base_url."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> MockUpstream:
        if self._thread is not None:
            return self
        self._stopping = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="mock-upstream", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._astart(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._astop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._thread = self._loop = None

    def __enter__(self) -> MockUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _astart(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: aiohttp cancels the handler when the peer goes away,
        # which is how we notice disconnects even while sleeping between chunks.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _astop(self) -> None:
        # Cancel in-flight handlers (hangs, slow streams) ourselves so shutdown is
        # immediate; the flag keeps these cancellations out of the disconnect count.
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ---- scripting

    def enqueue(self, *replies: Reply) -> None:
        """Queue replies, answered in FIFO order (to any path)."""
        with self._cond:
            self._queue.extend(replies)

    def set_default(self, reply: Reply | None) -> None:
        """Reply used (for any path) when the queue is empty; None restores the built-in."""
        with self._cond:
            self._default = reply

    def reset(self) -> None:
        """Clear the queue, the default, recorded requests and the disconnect count."""
        with self._cond:
            self._queue.clear()
            self._default = None
            self._requests.clear()
            self._disconnects = 0

    # ---- observation

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._cond:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._cond:
            return self._requests[-1]

    @property
    def disconnects(self) -> int:
        with self._cond:
            return self._disconnects

    def wait_for_requests(self, count: int = 1, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self._requests) >= count, timeout)

    def wait_for_disconnect(self, timeout: float = 5.0, count: int = 1) -> bool:
        """Block until at least `count` disconnects were seen in total."""
        with self._cond:
            return self._cond.wait_for(lambda: self._disconnects >= count, timeout)

    # `timeout` (not asyncio.timeout) keeps these mirrors of the sync waiters simple.
    async def await_requests(self, count: int = 1, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
        return await _poll(lambda: len(self.requests) >= count, timeout)

    async def await_disconnect(self, timeout: float = 5.0, count: int = 1) -> bool:  # noqa: ASYNC109
        """Like wait_for_disconnect, but polls so the caller's event loop keeps running."""
        return await _poll(lambda: self.disconnects >= count, timeout)

    def _note_disconnect(self) -> None:
        with self._cond:
            self._disconnects += 1
            self._cond.notify_all()

    # ---- request handling (server thread)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            body = await request.read()
            try:
                decoded = json.loads(body) if body else None
            except ValueError:
                decoded = None
            record = RecordedRequest(
                method=request.method,
                path=request.path,
                raw_path=request.raw_path.partition("?")[0],
                query=dict(request.query),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                json=decoded,
                client_port=_client_port(request),
            )
            with self._cond:
                self._requests.append(record)
                reply = self._queue.popleft() if self._queue else self._default
                self._cond.notify_all()
            if reply is None:
                reply = _builtin_reply(request.method, request.path, decoded)
            while isinstance(reply, ComputedReply):
                reply = reply.make(record)
            return await self._respond(request, reply, decoded)
        except (asyncio.CancelledError, ConnectionResetError):
            # Cancelled by aiohttp because the peer closed, or by our own stop().
            if not self._stopping:
                self._note_disconnect()
            raise
        finally:
            self._tasks.discard(task)

    async def _respond(self, request: web.Request, reply: Reply, req: Any) -> web.StreamResponse:
        model = _request_model(req)
        if isinstance(reply, HangReply):
            await asyncio.Event().wait()  # nothing sets it: only cancellation ends a hang
            raise AssertionError("unreachable")
        if isinstance(reply, SSEReply):
            return await self._stream(request, reply, req)
        await asyncio.sleep(reply.delay)
        if isinstance(reply, JSONReply):
            body = reply.body
            if body is None:
                body = completion(model=model, usage=make_usage(_prompt_tokens(req)))
            return _response(reply.status, _dumps(body), "application/json", reply.headers)
        if isinstance(reply, RawReply):
            return _response(reply.status, reply.body, reply.content_type, reply.headers)
        error = {
            "message": reply.message,
            "type": reply.type,
            "param": reply.param,
            "code": reply.code,
        }
        return _response(reply.status, _dumps({"error": error}), "application/json", reply.headers)

    async def _stream(self, request: web.Request, reply: SSEReply, req: Any) -> web.StreamResponse:
        items: Sequence[dict[str, Any] | str | bytes] | None = reply.chunks
        if items is None:
            include_usage = reply.include_usage
            if include_usage is None:
                opts = req.get("stream_options") if isinstance(req, dict) else None
                include_usage = bool(isinstance(opts, dict) and opts.get("include_usage"))
            items = default_chunks(_request_model(req), include_usage, _prompt_tokens(req))
        headers = _headers("text/event-stream", {"cache-control": "no-cache", **reply.headers})
        resp = web.StreamResponse(status=200, headers=headers)
        resp.enable_chunked_encoding()
        await resp.prepare(request)  # StreamResponse sends the headers right away
        try:
            for i, item in enumerate(items):
                if i == reply.cut_after:
                    break
                await asyncio.sleep(reply.first_delay if i == 0 else reply.delay_between)
                await resp.write(_sse(item))
            if reply.cut_after is not None:
                # Close the socket mid chunked-body: the client sees a truncated
                # message. close() (unlike abort()) flushes what was already written.
                # aiohttp's own write_eof afterwards fails quietly (ConnectionError).
                if request.transport is not None:
                    request.transport.close()
                return resp
            if reply.send_done:
                await asyncio.sleep(reply.delay_between)
                await resp.write(b"data: [DONE]\n\n")
        except ConnectionResetError:
            # Peer closed before aiohttp's cancellation reached us: count it here and
            # hand the dead response back (re-raising would log a spurious 500).
            self._note_disconnect()
        return resp


# --------------------------------------------------------------------------- helpers


def _builtin_reply(method: str, path: str, req: Any) -> Reply:
    route = path.rstrip("/")
    body = req if isinstance(req, dict) else {}
    if method == "POST" and route == "/v1/chat/completions":
        return SSEReply() if body.get("stream") is True else JSONReply()
    if method == "POST" and route == "/v1/embeddings":
        inputs = body.get("input")
        if not inputs:
            return ErrorReply(400, "'input' is a required property", param="input")
        count = len(inputs) if isinstance(inputs, list) and not isinstance(inputs[0], int) else 1
        size = body.get("dimensions") or 4
        vectors = [embedding_vector(i, size) for i in range(count)]
        base64_encoded = body.get("encoding_format") == "base64"
        return JSONReply(embedding_answer(vectors, _request_model(req), base64_encoded))
    if method == "POST" and route == "/v1/completions":
        if body.get("stream") is not True:
            return JSONReply(text_completion(model=_request_model(req)))
        options = body.get("stream_options")
        usage = isinstance(options, dict) and options.get("include_usage") is True
        return SSEReply(list(text_chunks(_request_model(req), usage)))
    if method == "POST" and route.endswith("/responses"):
        from tests.responses_mock import builtin_reply  # it builds on this module's shapes

        return builtin_reply(req)
    # What api.openai.com answers for an unknown route.
    return ErrorReply(404, f"Invalid URL ({method} {path})")


def _request_model(req: Any) -> str:
    model = req.get("model") if isinstance(req, dict) else None
    return model if isinstance(model, str) else DEFAULT_MODEL


def _prompt_tokens(req: Any) -> int:
    """A deterministic stand-in for tokenization: words in the message contents."""
    messages = req.get("messages") if isinstance(req, dict) else None
    if not isinstance(messages, list):
        return 1
    words = sum(len(str(m.get("content") or "").split()) for m in messages if isinstance(m, dict))
    return max(1, words)


def _dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _sse(item: dict[str, Any] | str | bytes) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode()
    return b"data: " + _dumps(item) + b"\n\n"


def _headers(content_type: str, extra: dict[str, str]) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict({"content-type": content_type})
    headers["x-request-id"] = f"req_mock_{time.monotonic_ns()}"
    headers.update(extra)  # scripted headers win, case-insensitively
    return headers


def _response(status: int, body: bytes, content_type: str, extra: dict[str, str]) -> web.Response:
    return web.Response(status=status, body=body, headers=_headers(content_type, extra))


async def _poll(predicate: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.01)
    return True


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def mock_upstream() -> Iterator[MockUpstream]:
    """A started MockUpstream, stopped after the test."""
    with MockUpstream() as server:
        yield server


@pytest.fixture
def mock_upstream_factory() -> Iterator[Callable[[], MockUpstream]]:
    """Call it to start extra MockUpstreams; all are stopped after the test."""
    servers: list[MockUpstream] = []

    def make() -> MockUpstream:
        server = MockUpstream().start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def shared_upstream() -> Iterator[MockUpstream]:
    """One server for a whole test module: starting servers costs more than most tests."""
    with MockUpstream() as server:
        yield server


@pytest.fixture
def upstream(shared_upstream: MockUpstream) -> MockUpstream:
    """The module's server with its script and recordings cleared for this test."""
    shared_upstream.reset()
    return shared_upstream
