"""One account of every finished request: exactly one record per request, delivered to
the registered sinks off the request path, for answers, errors and streams alike."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from gateway.accounting import RequestRecord
from tests.gateway_server import GatewayServer, upstream_config
from tests.mock_upstream import ErrorReply, MockUpstream, SSEReply, chunk
from tests.routing_setup import HELLO, wait_until

KEY = "sb-accounting-test-key-0001"
HEADERS = {"authorization": f"Bearer {KEY}"}


class Captured:
    name = "capture"

    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    async def deliver(self, records: Sequence[RequestRecord]) -> None:
        self.records.extend(records)

    def of(self, request_id: str) -> RequestRecord:
        wait_until(lambda: any(r.request_id == request_id for r in self.records), 5)
        found = [r for r in self.records if r.request_id == request_id]
        assert len(found) == 1, found
        return found[0]


@pytest.fixture(scope="module")
def gateway(shared_upstream: MockUpstream) -> Iterator[GatewayServer]:
    config = upstream_config(shared_upstream.url)
    config["auth"] = {
        "teams": [{"name": "search"}],
        "keys": [
            {
                "name": "search-prod",
                "team": "search",
                "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
            },
        ],
    }
    server = GatewayServer(config).start()
    yield server
    server.stop()


@pytest.fixture
def captured(gateway: GatewayServer) -> Iterator[Captured]:
    sink = Captured()
    accounts = gateway.app.state.services.accounts
    accounts.add_sink(sink)
    yield sink
    accounts._sinks.remove(sink)


def post(gateway: GatewayServer, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
    headers = {**HEADERS, **kwargs.pop("headers", {})}
    return gateway.post(body, headers=headers, **kwargs)


def test_a_json_answer(gateway: GatewayServer, upstream: MockUpstream, captured: Captured) -> None:
    response = post(gateway, {"model": "test-model", "messages": HELLO})
    assert response.status_code == 200
    record = captured.of(response.headers["x-request-id"])
    assert (record.endpoint, record.key, record.team, record.model) == (
        "chat.completions",
        "search-prod",
        "search",
        "test-model",
    )
    assert (record.status, record.error_code, record.stream) == (200, None, False)
    assert record.routing_metadata is not None
    assert record.provider == "mock"
    assert record.usage is not None and record.usage.total_tokens > 0
    assert record.cost_usd == response.json()["routing_metadata"]["cost"]["usd"] > 0
    assert not record.cost_estimated and record.attempts == []
    assert record.duration_ms > 0 and record.started_at > 0


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({"authorization": "Bearer wrong"}, b'{"model": "test-model"}', 401, "invalid_api_key"),
        ({"content-type": "text/plain"}, b"{}", 415, "unsupported_media_type"),
        ({}, b"{nope", 400, "invalid_json"),
        ({}, b'{"model": "test-model", "messages": []}', 400, "invalid_value"),
        (
            {},
            b'{"model": "no-such", "messages": [{"role": "user", "content": "x"}]}',
            404,
            "model_not_found",
        ),
    ],
)
def test_errors_before_routing(
    gateway: GatewayServer,
    upstream: MockUpstream,
    captured: Captured,
    headers: dict[str, str],
    body: bytes,
    status: int,
    code: str,
) -> None:
    response = post(gateway, body, headers=headers)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    record = captured.of(response.headers["x-request-id"])
    assert (record.status, record.error_code) == (status, code)
    assert record.routing_metadata is None and record.cost_usd == 0
    assert record.key == (None if status == 401 else "search-prod")
    assert len(upstream.requests) == 0


def test_an_upstream_failure_lists_its_attempts(
    gateway: GatewayServer, upstream: MockUpstream, captured: Captured
) -> None:
    upstream.enqueue(*[ErrorReply(400, "bad", type="invalid_request_error")])
    response = post(gateway, {"model": "test-model", "messages": HELLO})
    assert response.status_code == 400
    record = captured.of(response.headers["x-request-id"])
    assert (record.status, record.error_code) == (400, "upstream_rejected_request")


def test_an_unknown_route(gateway: GatewayServer, captured: Captured) -> None:
    response = httpx.get(f"{gateway.url}/v1/nothing-here", timeout=5)
    assert response.status_code == 404
    record = captured.of(response.headers["x-request-id"])
    assert (record.endpoint, record.status, record.error_code) == (
        "/v1/nothing-here",
        404,
        "unknown_url",
    )


def _stream(gateway: GatewayServer, **kwargs: Any) -> tuple[str, list[str]]:
    body = {"model": "test-model", "messages": HELLO, "stream": True}
    with httpx.stream(
        "POST", f"{gateway.url}/v1/chat/completions", json=body, headers=HEADERS, timeout=10
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
        return response.headers["x-request-id"], lines


def test_a_stream_that_ends(
    gateway: GatewayServer, upstream: MockUpstream, captured: Captured
) -> None:
    request_id, lines = _stream(gateway)
    assert lines[-1] == "data: [DONE]"
    record = captured.of(request_id)
    assert (record.status, record.stream, record.error_code) == (200, True, None)
    closing = json.loads(lines[-2][6:])
    assert record.cost_usd == closing["routing_metadata"]["cost"]["usd"] > 0


def test_a_stream_that_fails_midway(
    gateway: GatewayServer, upstream: MockUpstream, captured: Captured
) -> None:
    upstream.enqueue(SSEReply([chunk("a", role="assistant"), chunk("b")], cut_after=2))
    request_id, lines = _stream(gateway)
    assert '"error"' in lines[-2]
    record = captured.of(request_id)
    assert record.status == 502 and record.error_code == "upstream_stream_cut"
    assert record.routing_metadata is not None and record.cost_estimated
    assert record.cost_usd > 0  # what it produced before failing is paid for


def test_a_stream_the_client_leaves(
    gateway: GatewayServer, upstream: MockUpstream, captured: Captured
) -> None:
    pieces = [chunk("x", role="assistant")] + [chunk(f" {i}") for i in range(50)]
    upstream.enqueue(SSEReply(pieces, delay_between=0.2))
    body = {"model": "test-model", "messages": HELLO, "stream": True}
    with httpx.stream(
        "POST", f"{gateway.url}/v1/chat/completions", json=body, headers=HEADERS, timeout=10
    ) as response:
        request_id = response.headers["x-request-id"]
        data = (line for line in response.iter_lines() if line.startswith("data: "))
        next(data), next(data)
    record = captured.of(request_id)
    assert (record.status, record.error_code) == (499, "client_closed_request")
    assert record.cost_usd > 0 and record.cost_estimated
    assert upstream.wait_for_disconnect(timeout=30)
