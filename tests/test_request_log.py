"""The request log: one JSON line per request, in the documented format, to stdout by
default or to a file (reopened when log rotation moves it); bodies only when asked."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import openai
import pytest

from gateway.observability.request_log import RequestLine
from tests.gateway_process import GatewayProcess
from tests.gateway_server import GatewayServer, metadata_of
from tests.mock_upstream import ErrorReply, MockUpstream, SSEReply
from tests.routing_setup import HELLO, routed_config, wait_until

StartGateway = Callable[[dict[str, Any]], GatewayServer]
KEY = "sb-search-key-000000001"
# every line has exactly these fields (the bodies only with `logging.bodies: true`)
FIELDS = set(RequestLine.__struct_fields__) - {"request_body", "response_body"}


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def logged_config(
    upstream: MockUpstream, path: Path, rpm: int | None = None, **logging: Any
) -> dict[str, Any]:
    config = routed_config({"m": [("a", 1.0), ("b", 2.0)]}, {"a": upstream.url, "b": upstream.url})
    key: dict[str, Any] = {"name": "search-prod", "key_sha256": _digest(KEY), "team": "search"}
    if rpm is not None:
        key["rpm"] = rpm
    config["auth"] = {"teams": [{"name": "search"}], "keys": [key]}
    config["logging"] = {"output": str(path), **logging}
    return config


def lines(path: Path, count: int) -> list[dict[str, Any]]:
    """The log's lines once there are `count` (written every 0.1 s, off the path)."""

    def written() -> list[dict[str, Any]]:
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    wait_until(lambda: len(written()) >= count, timeout=10)
    found = written()
    assert len(found) == count, found
    return found


def by_id(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {entry["request_id"]: entry for entry in entries}


def test_one_line_per_request_of_every_kind(
    gateway_factory: StartGateway, upstream: MockUpstream, tmp_path: Path
) -> None:
    path = tmp_path / "requests.log"
    gateway = gateway_factory(logged_config(upstream, path, rpm=2))
    client = gateway.sdk(KEY)
    # a fallback: `a` fails, `b` answers
    upstream.enqueue(ErrorReply(503, "overloaded", type="server_error"))
    answer = client.chat.completions.with_raw_response.create(
        model="m", messages=HELLO, extra_headers={"x-request-id": "req-fallback"}
    )
    served = metadata_of(answer.parse())
    chunks = list(
        client.chat.completions.create(
            model="m", messages=HELLO, stream=True, extra_headers={"x-request-id": "req-stream"}
        )
    )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="nope", messages=HELLO, extra_headers={"x-request-id": "req-unknown"}
        )
    with pytest.raises(openai.RateLimitError):  # the 3rd admitted in a minute, rpm 2
        client.chat.completions.create(
            model="m", messages=HELLO, extra_headers={"x-request-id": "req-limited"}
        )

    entries = lines(path, 4)
    for entry in entries:
        assert set(entry) == FIELDS
        assert entry["key"] == "search-prod" and entry["team"] == "search"
        assert entry["endpoint"] == "chat.completions"
        assert entry["ts"].endswith("+00:00")
    logged = by_id(entries)

    fallback = logged["req-fallback"]
    assert (fallback["status"], fallback["error_code"], fallback["stream"]) == (200, None, False)
    assert (fallback["model"], fallback["model_canonical"]) == ("m", "m")
    assert (fallback["provider"], fallback["deployment"]) == ("b", "b-m")
    assert fallback["strategy"] == "cost"
    assert fallback["latency_ms"] == served["latency_ms"]
    assert fallback["duration_ms"] >= served["latency_ms"]
    assert fallback["cost_usd"] == served["cost"]["usd"] and fallback["cost_estimated"] is False
    assert fallback["prompt_tokens"] == answer.parse().usage.prompt_tokens
    assert fallback["completion_tokens"] == answer.parse().usage.completion_tokens
    [attempt] = fallback["attempts"]
    assert (attempt["provider"], attempt["model"], attempt["status"], attempt["error"]) == (
        "a",
        "m",
        503,
        "upstream_unavailable",
    )
    assert attempt["latency_ms"] >= 0

    stream = logged["req-stream"]
    assert stream["stream"] is True and stream["status"] == 200
    assert stream["ttft_ms"] == metadata_of(chunks[-1])["ttft_ms"] is not None

    unknown = logged["req-unknown"]
    assert (unknown["status"], unknown["error_code"], unknown["provider"]) == (
        404,
        "model_not_found",
        None,
    )
    assert unknown["model"] == "nope"  # as asked: it is the log, not a metric label
    limited = logged["req-limited"]
    assert (limited["status"], limited["error_code"]) == (429, "rate_limit_exceeded")


def test_a_stream_the_client_left_is_logged_as_499(
    gateway_factory: StartGateway, upstream: MockUpstream, tmp_path: Path
) -> None:
    path = tmp_path / "requests.log"
    upstream.enqueue(SSEReply(delay_between=5.0))
    gateway = gateway_factory(logged_config(upstream, path))
    body = {"model": "m", "messages": HELLO, "stream": True}
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {KEY}", "x-request-id": "req-left"},
        timeout=10,
    ) as answer:
        chunk_lines = answer.iter_lines()
        assert next(chunk_lines).startswith("data: ")
    [entry] = lines(path, 1)
    assert (entry["request_id"], entry["status"], entry["error_code"]) == (
        "req-left",
        499,
        "client_closed_request",
    )
    assert entry["provider"] == "a"  # it was served, and is charged for what it produced


def test_bodies_only_when_asked_and_cut_at_the_limit(
    gateway_factory: StartGateway, upstream: MockUpstream, tmp_path: Path
) -> None:
    path = tmp_path / "requests.log"
    gateway = gateway_factory(logged_config(upstream, path, bodies=True, max_body_bytes=1024))
    client = gateway.sdk(KEY)
    answer = client.chat.completions.create(
        model="m", messages=HELLO, extra_headers={"x-request-id": "req-json"}
    )
    list(
        client.chat.completions.create(
            model="m", messages=HELLO, stream=True, extra_headers={"x-request-id": "req-sse"}
        )
    )
    long = [{"role": "user", "content": "x" * 5000}]
    client.chat.completions.create(
        model="m", messages=long, extra_headers={"x-request-id": "req-long"}
    )
    logged = by_id(lines(path, 3))
    plain = logged["req-json"]
    assert plain["request_body"] == {"model": "m", "messages": HELLO}  # nested, as sent
    assert plain["response_body"]["choices"][0]["message"]["content"] == (
        answer.choices[0].message.content
    )
    assert plain["response_body"]["routing_metadata"]["request_id"] == "req-json"
    sse = logged["req-sse"]["response_body"]
    assert isinstance(sse, str) and sse.startswith("data: {")  # the events as sent
    assert len(sse.encode()) == 1024  # this stream is longer than the limit
    cut = logged["req-long"]["request_body"]
    assert isinstance(cut, str) and len(cut.encode()) == 1024  # cut, so no longer JSON


def test_no_bodies_by_default(
    gateway_factory: StartGateway, upstream: MockUpstream, tmp_path: Path
) -> None:
    path = tmp_path / "requests.log"
    gateway = gateway_factory(logged_config(upstream, path))
    gateway.sdk(KEY).chat.completions.create(model="m", messages=HELLO)
    [entry] = lines(path, 1)
    assert "request_body" not in entry and "response_body" not in entry
    assert "Hello" not in path.read_text() and "hi" not in path.read_text().lower().split('"')


def test_off_when_asked(
    gateway_factory: StartGateway, upstream: MockUpstream, tmp_path: Path
) -> None:
    path = tmp_path / "requests.log"
    gateway = gateway_factory(logged_config(upstream, path, requests=False))
    gateway.sdk(KEY).chat.completions.create(model="m", messages=HELLO)
    assert gateway.app.state.services.watch.request_log is None
    assert not path.exists()


def test_a_rotated_file_is_reopened(
    gateway_factory: StartGateway, upstream: MockUpstream, tmp_path: Path
) -> None:
    path = tmp_path / "requests.log"
    gateway = gateway_factory(logged_config(upstream, path))
    client = gateway.sdk(KEY)
    client.chat.completions.create(model="m", messages=HELLO)
    lines(path, 1)
    os.rename(path, tmp_path / "requests.log.1")  # what logrotate does, without copytruncate
    client.chat.completions.create(model="m", messages=HELLO)
    assert len(lines(path, 1)) == 1
    assert len((tmp_path / "requests.log.1").read_text().splitlines()) == 1


def test_serve_writes_it_to_stdout_by_default(upstream: MockUpstream, tmp_path: Path) -> None:
    config = routed_config({"m": [("a", 1.0)]}, {"a": upstream.url})
    gateway = GatewayProcess(config, tmp_path, "stdout").start()
    try:
        answer = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json={"model": "m", "messages": HELLO},
            headers={"x-request-id": "req-on-stdout"},
            timeout=10,
        )
        assert answer.status_code == 200
    finally:
        gateway.stop()  # what is gathered is written at shutdown at the latest
    output = (tmp_path / "stdout.log").read_text().splitlines()
    logged = [json.loads(line) for line in output if line.startswith("{")]
    assert [entry["request_id"] for entry in logged] == ["req-on-stdout"]
    msgspec.json.decode(json.dumps(logged[0]), type=RequestLine)  # the documented shape
