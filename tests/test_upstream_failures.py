"""Upstream failures reach the client as clean OpenAI errors with the mapped status:
an error response before a stream starts, an error event then `[DONE]` after. A client
that goes away closes the upstream request, and failures never poison the pool."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.gateway_server import GatewayServer, upstream_config
from tests.mock_upstream import (
    ErrorReply,
    HangReply,
    JSONReply,
    MockUpstream,
    RawReply,
    Reply,
    SSEReply,
    chunk,
)

PROVIDER_KEY = "sk-upstream-secret"  # what upstream_config gives the provider
HELLO = [{"role": "user", "content": "hi"}]
StartGateway = Callable[[dict[str, Any]], GatewayServer]
pytestmark = pytest.mark.usefixtures("upstream")


@pytest.fixture(scope="module")
def gateway(shared_upstream: MockUpstream) -> Iterator[GatewayServer]:
    """One gateway for the module (failures must not poison it for the next test). One
    try per request: these tests map one upstream failure; retries have their own tests."""
    config = upstream_config(shared_upstream.url, timeout=0.5)
    config["routing"] = {"retries": {"attempts": 1}}
    server = GatewayServer(config).start()
    yield server
    server.stop()


def request(stream: bool = False) -> dict[str, Any]:
    return {"model": "test-model", "messages": HELLO, "stream": stream}


def expect_error(
    response: httpx.Response,
    status: int,
    type: str,
    code: str,
    param: str | None = None,
    mentions: str | None = None,
) -> dict[str, Any]:
    """Assert an OpenAI error envelope (not SSE), exactly; return its `error` object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("x-request-id")
    error = envelope(response.json())
    assert (error["type"], error["code"], error["param"]) == (type, code, param)
    if mentions is not None:
        assert mentions.lower() in error["message"].lower()
    assert PROVIDER_KEY not in response.text + str(response.headers.raw)
    return error


def envelope(payload: Any) -> dict[str, Any]:
    assert isinstance(payload, dict) and set(payload) == {"error"}, payload
    error = payload["error"]
    # routing's failures also carry their attempts as data (DESIGN, Errors)
    assert set(error) - {"attempts"} == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    for attempt in error.get("attempts", []):
        assert set(attempt) == {"provider", "model", "status", "error", "latency_ms"}
    return error


def still_serves(gateway: GatewayServer, upstream: MockUpstream) -> None:
    """After a failure the next plain request is served (no poisoned pooled connection).
    Routing rightly keeps away from a deployment that just failed, so it forgets first:
    this checks the connection pool, not the circuit breaker."""
    gateway.forget_routing()
    upstream.set_default(None)
    response = gateway.post(request())
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hello from mock upstream"
    with httpx.stream("POST", chat_url(gateway), json=request(True), timeout=10) as streamed:
        assert streamed.status_code == 200
        assert sse_data(streamed)[-1] == "[DONE]"


def chat_url(gateway: GatewayServer) -> str:
    return f"{gateway.url}/v1/chat/completions"


def sse_data(response: httpx.Response) -> list[str]:
    """The `data:` payloads of an SSE response, read to its end."""
    return [line[6:] for line in response.iter_lines() if line.startswith("data: ")]


def stream_events(gateway: GatewayServer) -> list[str]:
    with httpx.stream("POST", chat_url(gateway), json=request(True), timeout=10) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return sse_data(response)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- statuses

STATUS_CASES = [
    # (upstream reply, client status, type, code, param, message mentions)
    pytest.param(
        ErrorReply(
            400,
            "Invalid 'messages[0].content': string too long.",
            code="string_above_max_length",
            param="messages[0].content",
        ),
        400,
        "invalid_request_error",
        "string_above_max_length",
        "messages[0].content",
        "string too long",
        id="400-with-code-and-param",
    ),
    pytest.param(
        ErrorReply(400, "Unrecognized request argument supplied: foo", param="foo"),
        400,
        "invalid_request_error",
        "upstream_rejected_request",
        "foo",
        "Unrecognized request argument",
        id="400-without-code",
    ),
    pytest.param(
        ErrorReply(
            401,
            f"Incorrect API key provided: {PROVIDER_KEY}.",
            code="invalid_api_key",
        ),
        502,
        "api_error",
        "upstream_auth_failed",
        None,
        "credentials",
        id="401",
    ),
    pytest.param(
        ErrorReply(403, f"Key {PROVIDER_KEY} may not use this model", type="permission_error"),
        502,
        "api_error",
        "upstream_auth_failed",
        None,
        "credentials",
        id="403",
    ),
    pytest.param(
        ErrorReply(404, "The model `upstream-model-id` does not exist", code="model_not_found"),
        502,
        "api_error",
        "upstream_unavailable",
        None,
        "does not exist",
        id="404",
    ),
    pytest.param(
        ErrorReply(500, "The server had an error processing your request.", type="server_error"),
        502,
        "api_error",
        "upstream_unavailable",
        None,
        "server had an error",
        id="500",
    ),
    pytest.param(
        ErrorReply(502, "Bad gateway.", type="server_error"),
        502,
        "api_error",
        "upstream_unavailable",
        None,
        "bad gateway",
        id="502",
    ),
    pytest.param(
        ErrorReply(503, "The engine is currently overloaded.", type="server_error"),
        502,
        "api_error",
        "upstream_unavailable",
        None,
        "overloaded",
        id="503",
    ),
    pytest.param(
        ErrorReply(529, "Overloaded", type="overloaded_error"),
        502,
        "api_error",
        "upstream_unavailable",
        None,
        "overloaded",
        id="529",
    ),
    pytest.param(
        ErrorReply(504, "Gateway timeout.", type="server_error"),
        504,
        "api_error",
        "upstream_timeout",
        None,
        "timeout",
        id="504",
    ),
    pytest.param(
        RawReply(
            b"<html><body><h1>502 Bad Gateway</h1></body></html>",
            status=502,
            content_type="text/html",
        ),
        502,
        "api_error",
        "upstream_unavailable",
        None,
        "502",
        id="502-html-page",
    ),
    pytest.param(
        RawReply(b"<html>oops</html>"),
        502,
        "api_error",
        "upstream_bad_response",
        None,
        "not a chat completion",
        id="200-garbage",
    ),
    pytest.param(
        JSONReply({"foo": 1}),
        502,
        "api_error",
        "upstream_bad_response",
        None,
        "not a chat completion",
        id="200-not-a-completion",
    ),
    pytest.param(
        RawReply(b'{"id": "chatcmpl-1", "choices": ['),
        502,
        "api_error",
        "upstream_bad_response",
        None,
        "not a chat completion",
        id="200-truncated-json",
    ),
]


@pytest.mark.parametrize(("reply", "status", "type", "code", "param", "mentions"), STATUS_CASES)
def test_upstream_failure_is_mapped(
    gateway: GatewayServer,
    upstream: MockUpstream,
    reply: Reply,
    status: int,
    type: str,
    code: str,
    param: str | None,
    mentions: str,
) -> None:
    upstream.enqueue(reply)
    response = gateway.post(request())
    error = expect_error(response, status, type, code, param, mentions)
    assert "<html" not in error["message"]
    assert "retry-after" not in response.headers
    assert len(upstream.requests) == 1
    assert upstream.last_request.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    still_serves(gateway, upstream)


ERROR_STATUS_CASES = [case for case in STATUS_CASES if case.values[0].status != 200]


@pytest.mark.parametrize(
    ("reply", "status", "type", "code", "param", "mentions"), ERROR_STATUS_CASES
)
def test_upstream_failure_before_the_stream_starts_is_a_plain_error(
    gateway: GatewayServer,
    upstream: MockUpstream,
    reply: Reply,
    status: int,
    type: str,
    code: str,
    param: str | None,
    mentions: str,
) -> None:
    upstream.enqueue(reply)
    with httpx.stream("POST", chat_url(gateway), json=request(True), timeout=10) as response:
        response.read()
    expect_error(response, status, type, code, param, mentions)
    still_serves(gateway, upstream)


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ({"retry-after": "7"}, "7"),
        ({"retry-after-ms": "3000"}, "3"),
        ({"retry-after": "2.2"}, "3"),  # never tell a client to come back too early
        ({}, "1"),  # upstream said nothing: a 429 still says when to come back
        # numbers in form only: said nothing either (not a 500 from the gateway)
        ({"retry-after": "nan"}, "1"),
        ({"retry-after-ms": "inf", "retry-after": "4"}, "4"),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_rate_limit_keeps_retry_after(
    gateway: GatewayServer,
    upstream: MockUpstream,
    headers: dict[str, str],
    retry_after: str,
    stream: bool,
) -> None:
    upstream.enqueue(
        ErrorReply(429, "Rate limit reached for requests", "requests", headers=headers)
    )
    response = gateway.post(request(stream))
    expect_error(response, 429, "rate_limit_error", "upstream_rate_limited", None, "rate limit")
    assert response.headers["retry-after"] == retry_after


# --------------------------------------------------------------------------- transport


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_hanging_upstream_times_out(
    gateway: GatewayServer, upstream: MockUpstream, stream: bool
) -> None:
    upstream.enqueue(HangReply())
    started = time.monotonic()
    response = gateway.post(request(stream))
    elapsed = time.monotonic() - started
    expect_error(response, 504, "api_error", "upstream_timeout", None, "time")
    # the upstream never answers, so the 504 is the gateway's own timeout; no upper bound
    # on the time, which a loaded machine could overrun
    assert elapsed >= 0.5
    assert upstream.wait_for_disconnect(timeout=30), "the hung request was not closed"
    still_serves(gateway, upstream)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_connection_refused(gateway_factory: StartGateway, stream: bool) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    # a refused connection fails at once: far inside the 30 s timeout it must not wait for
    gateway = gateway_factory(upstream_config(dead, timeout=30))
    started = time.monotonic()
    response = gateway.post(request(stream))
    expect_error(response, 502, "api_error", "upstream_connect_failed", None, "connect")
    assert time.monotonic() - started < 15


# --------------------------------------------------------------------------- mid-stream

GOOD_START = [chunk(role="assistant", content=""), chunk(content="Hel"), chunk(content="lo")]


@pytest.mark.parametrize(
    ("reply", "code", "mentions"),
    [
        pytest.param(SSEReply(cut_after=3), "upstream_stream_cut", "closed", id="cut"),
        pytest.param(
            SSEReply([*GOOD_START, "data: not json\n\n", chunk(finish_reason="stop")]),
            "upstream_bad_response",
            "not a chunk",
            id="garbage-event",
        ),
        pytest.param(
            SSEReply(
                [
                    *GOOD_START,
                    {"error": {"message": "The server is overloaded", "type": "server_error"}},
                ]
            ),
            "upstream_unavailable",
            "overloaded",
            id="error-event",
        ),
        pytest.param(
            SSEReply(GOOD_START, send_done=False),
            "upstream_stream_cut",
            "before it was complete",
            id="ended-without-finish-or-done",
        ),
    ],
)
def test_failure_after_stream_start_ends_with_error_event(
    gateway: GatewayServer, upstream: MockUpstream, reply: SSEReply, code: str, mentions: str
) -> None:
    upstream.enqueue(reply)
    events = stream_events(gateway)
    *chunks, error_event, done = events
    assert done == "[DONE]"
    assert len(chunks) == 3
    assert [json.loads(c)["object"] for c in chunks] == ["chat.completion.chunk"] * 3
    assert not any("routing_metadata" in c for c in chunks)
    error = envelope(json.loads(error_event))
    assert (error["type"], error["code"], error["param"]) == ("api_error", code, None)
    assert mentions in error["message"]
    still_serves(gateway, upstream)


def test_stalled_stream_times_out_with_error_event(
    upstream: MockUpstream, gateway_factory: StartGateway
) -> None:
    gateway = gateway_factory(upstream_config(upstream.url, read_timeout=0.3))
    # the upstream stalls for a minute: only the 0.3 s read timeout ends the stream sooner
    upstream.enqueue(SSEReply([*GOOD_START, chunk(finish_reason="stop")], delay_between=60.0))
    started = time.monotonic()
    events = stream_events(gateway)
    assert time.monotonic() - started < 30
    first, error_event, done = events
    assert json.loads(first)["object"] == "chat.completion.chunk"
    assert done == "[DONE]"
    error = envelope(json.loads(error_event))
    assert (error["type"], error["code"], error["param"]) == ("api_error", "upstream_timeout", None)
    assert upstream.wait_for_disconnect(timeout=30)
    still_serves(gateway, upstream)


def test_stream_running_past_the_deadline_ends_with_a_timeout_event(
    upstream: MockUpstream, gateway_factory: StartGateway
) -> None:
    config = upstream_config(upstream.url)
    config["routing"] = {"deadline": 2.0}
    gateway = gateway_factory(config)
    # 10 s of chunks: the 2 s deadline cuts the stream, however slow the machine
    trickle = [chunk(content=f"t{i} ") for i in range(40)] + [chunk(finish_reason="stop")]
    upstream.enqueue(SSEReply(trickle, delay_between=0.25))
    started = time.monotonic()
    *chunks, error_event, done = stream_events(gateway)
    assert time.monotonic() - started >= 2.0
    assert 1 <= len(chunks) < 40
    assert done == "[DONE]"
    error = envelope(json.loads(error_event))
    assert (error["code"], error["param"]) == ("upstream_timeout", None)
    assert "deadline" in error["message"]
    assert upstream.wait_for_disconnect(timeout=30), "the upstream request was not closed"


# --------------------------------------------------------------------------- client gone

SLOW_STREAM = SSEReply(
    [chunk(content=f"t{i} ") for i in range(50)] + [chunk(finish_reason="stop")],
    delay_between=0.1,
)


def test_client_disconnect_closes_the_upstream_request(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    upstream.enqueue(SLOW_STREAM)
    with httpx.stream("POST", chat_url(gateway), json=request(True), timeout=10) as response:
        assert response.status_code == 200
        data = (line for line in response.iter_lines() if line.startswith("data: "))
        assert [json.loads(next(data)[6:])["object"] for _ in range(2)] == [
            "chat.completion.chunk"
        ] * 2
    assert upstream.wait_for_disconnect(timeout=30)
    still_serves(gateway, upstream)


def _leave_with_block(stream: openai.Stream[Any]) -> None:
    with stream:
        for i, _ in enumerate(stream):
            if i == 1:
                break


def _call_close(stream: openai.Stream[Any]) -> None:
    for i, _ in enumerate(stream):
        if i == 1:
            break
    stream.close()


@pytest.mark.parametrize("stop_reading", [_leave_with_block, _call_close], ids=["with", "close"])
def test_sdk_stream_closed_early_closes_the_upstream_request(
    gateway: GatewayServer,
    upstream: MockUpstream,
    stop_reading: Callable[[openai.Stream[Any]], None],
) -> None:
    upstream.enqueue(SLOW_STREAM)
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(model="test-model", messages=HELLO, stream=True)
    stop_reading(stream)
    assert upstream.wait_for_disconnect(timeout=30)
    client.close()
    still_serves(gateway, upstream)


def test_many_failures_in_a_row_leave_the_gateway_healthy(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    failures: list[tuple[Reply, bool, int]] = [  # (reply, stream?, client status)
        (SSEReply(cut_after=2), True, 200),  # the stream had begun: an error event
        (RawReply(b"<html>oops</html>", status=502, content_type="text/html"), False, 502),
        (ErrorReply(500, "boom", type="server_error"), False, 502),
        (HangReply(), False, 504),
        (SSEReply(["data: not json\n\n"]), True, 502),  # before the first chunk
        (HangReply(), True, 504),
    ]
    for reply, stream, status in failures:
        gateway.forget_routing()  # five in a row would rightly open the circuit
        upstream.enqueue(reply)
        response = gateway.post(request(stream))
        assert response.status_code == status, response.text
        assert "error" in response.text
    assert len(upstream.requests) == len(failures)
    still_serves(gateway, upstream)
