"""Upstream failures are logged as they happen, at WARNING: provider, upstream host,
status and a reason a person can act on (connection refused, timeout after N s, the
5xx body cut short), with the request id; never a provider key."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway_process import GatewayProcess
from tests.gateway_server import GatewayServer, upstream_config
from tests.mock_upstream import ErrorReply, HangReply, MockUpstream, RawReply, SSEReply
from tests.redis_server import free_port
from tests.routing_setup import HELLO

StartGateway = Callable[[dict[str, Any]], GatewayServer]
SECRET = "sk-upstream-secret"  # upstream_config's provider key
LOGGER = "switchboard.upstream"


def failed_tries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING
    ]


def one_try(url: str, **provider: Any) -> dict[str, Any]:
    config = upstream_config(url, **provider)
    config["routing"] = {"retries": {"attempts": 1}}
    return config


def field(line: str, name: str) -> str:
    match = re.search(rf"\b{name}=(\"(?:[^\"\\]|\\.)*\"|\S+)", line)
    assert match, f"no {name}= in {line!r}"
    return match.group(1)


def test_connection_refused_names_host_port_and_reason(
    gateway_factory: StartGateway, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there
    gateway = gateway_factory(one_try(f"http://127.0.0.1:{port}/v1"))
    caplog.set_level(logging.WARNING, LOGGER)
    answer = gateway.post(
        {"model": "test-model", "messages": HELLO}, headers={"x-request-id": "req-refused-1"}
    )
    assert answer.status_code == 502
    [line] = failed_tries(caplog)
    assert field(line, "provider") == "mock"
    assert field(line, "host") == "127.0.0.1"
    assert field(line, "status") == "-"  # no HTTP answer at all
    assert field(line, "error") == "upstream_connect_failed"
    assert field(line, "request_id") == "req-refused-1"
    assert f"connection refused (127.0.0.1:{port})" in field(line, "reason")
    assert SECRET not in caplog.text


def test_timeout_says_which_limit_and_how_long(
    gateway_factory: StartGateway, upstream: MockUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.enqueue(HangReply())
    gateway = gateway_factory(one_try(upstream.url, timeout=0.3))
    caplog.set_level(logging.WARNING, LOGGER)
    answer = gateway.post({"model": "test-model", "messages": HELLO})
    assert answer.status_code == 504
    [line] = failed_tries(caplog)
    assert field(line, "error") == "upstream_timeout"
    assert "no complete answer within 0.3 s (timeout)" in field(line, "reason")
    assert field(line, "request_id") == answer.headers["x-request-id"]


def test_a_5xx_body_is_cut_short_and_scrubbed_of_our_key(
    gateway_factory: StartGateway, upstream: MockUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    page = f"<html><body><h1>502 Bad Gateway</h1> upstream said: Bearer {SECRET} " + "x" * 2000
    upstream.enqueue(RawReply(page.encode(), status=502, content_type="text/html"))
    gateway = gateway_factory(one_try(upstream.url))
    caplog.set_level(logging.WARNING, LOGGER)
    answer = gateway.post({"model": "test-model", "messages": HELLO})
    assert answer.status_code == 502
    [line] = failed_tries(caplog)
    assert field(line, "status") == "502"
    assert field(line, "host") == "127.0.0.1"
    assert field(line, "reason") == '"mock: HTTP 502"'
    body = field(line, "body")
    assert body.startswith('"<html><body><h1>502 Bad Gateway</h1> upstream said: [redacted] x')
    assert len(body) < 400  # cut short, not 2 kB of x
    assert SECRET not in caplog.text
    assert SECRET not in answer.text


def test_a_refused_key_is_logged_without_its_body(
    gateway_factory: StartGateway, upstream: MockUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    # providers echo (part of) the key in 401 messages: that body is never kept
    upstream.enqueue(ErrorReply(401, f"Incorrect API key provided: {SECRET}"))
    gateway = gateway_factory(one_try(upstream.url))
    caplog.set_level(logging.WARNING, LOGGER)
    gateway.post({"model": "test-model", "messages": HELLO})
    [line] = failed_tries(caplog)
    assert field(line, "status") == "401"
    assert field(line, "error") == "upstream_auth_failed"
    assert "circuit=opened" in line  # a refused key opens the circuit at once
    assert SECRET not in caplog.text
    assert "Incorrect API key" not in caplog.text


def test_a_stream_that_fails_before_its_first_chunk_is_logged_with_its_body(
    gateway_factory: StartGateway, upstream: MockUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.enqueue(ErrorReply(503, "The engine is currently overloaded", type="server_error"))
    gateway = gateway_factory(one_try(upstream.url))
    caplog.set_level(logging.WARNING, LOGGER)
    answer = gateway.post({"model": "test-model", "messages": HELLO, "stream": True})
    assert answer.status_code == 502
    [line] = failed_tries(caplog)
    assert field(line, "status") == "503"
    assert field(line, "host") == "127.0.0.1"
    assert "overloaded" in field(line, "reason")
    assert "server_error" in field(line, "body")  # the body itself, cut short


def test_a_stream_cut_midway_is_logged(
    gateway_factory: StartGateway, upstream: MockUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.enqueue(SSEReply(cut_after=3))
    gateway = gateway_factory(one_try(upstream.url))
    caplog.set_level(logging.WARNING, LOGGER)
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={"model": "test-model", "messages": HELLO, "stream": True},
        timeout=10,
    ) as answer:
        text = "".join(answer.iter_text())
    assert '"error"' in text and text.endswith("data: [DONE]\n\n")
    [line] = failed_tries(caplog)
    assert field(line, "error") == "upstream_stream_cut"
    assert field(line, "host") == "127.0.0.1"


def test_serve_logs_unreachable_upstreams_at_the_default_level(tmp_path: Path) -> None:
    """The user's report: every upstream unreachable, 502s, and an empty log. The real
    `switchboard serve`, at its default log level, now says why."""
    port = free_port()
    config = one_try(f"http://127.0.0.1:{port}/v1")
    gateway = GatewayProcess(config, tmp_path, "unreachable").start()
    try:
        answer = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": "test-model", "messages": HELLO},
            timeout=10,
        )
        assert answer.status_code == 502
    finally:
        gateway.stop()
    log = (tmp_path / "unreachable.log").read_text()
    assert "WARNING switchboard.upstream upstream try failed: provider=mock host=127.0.0.1" in log
    assert f"connection refused (127.0.0.1:{port})" in log
    assert f"request_id={answer.headers['x-request-id']}" in log
    assert SECRET not in log
