"""`Idempotency-Key`, Stripe-style: the same key and canonical body replays the stored
answer without dispatching or charging; another body or a request still running is a
409; errors release the key; streams ignore it; keys are scoped per gateway key."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway_server import GatewayServer, upstream_config
from tests.mock_upstream import ErrorReply, JSONReply, MockUpstream
from tests.routing_setup import HELLO, wait_until

KEY_A = "sb-idem-key-a-00000000001"
KEY_B = "sb-idem-key-b-00000000002"
ADMIN = "sk-idem-admin"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def gateway(shared_upstream: MockUpstream) -> Iterator[GatewayServer]:
    config = upstream_config(shared_upstream.url)
    config["auth"] = {
        "keys": [
            {"name": "a", "key_sha256": digest(KEY_A)},
            {"name": "b", "key_sha256": digest(KEY_B)},
        ]
    }
    config["admin"] = {"key_sha256": digest(ADMIN)}
    server = GatewayServer(config).start()
    yield server
    server.stop()


def send(gateway: GatewayServer, raw: bytes, idem: str | None, key: str = KEY_A) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"}
    if idem is not None:
        headers["idempotency-key"] = idem
    return gateway.post(raw, headers=headers)


def body(**extra: Any) -> bytes:
    return json.dumps({"model": "test-model", "messages": HELLO, **extra}).encode()


def test_the_same_body_is_replayed_and_charged_once(
    gateway: GatewayServer, upstream: MockUpstream, request: pytest.FixtureRequest
) -> None:
    idem = f"retry-{request.node.name}"
    first = send(gateway, body(temperature=0.5), idem)
    assert first.status_code == 200
    assert first.headers["x-switchboard-idempotency"] == "stored"
    # the same JSON, keys in another order and other spacing: the same canonical body
    again_raw = (
        b'{"temperature":0.5,  "messages":[{"content":"hi","role":"user"}],"model":"test-model"}'
    )
    wait_until(lambda: send(gateway, again_raw, idem).status_code == 200, 5)
    replay = send(gateway, again_raw, idem)
    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content
    assert replay.headers["x-switchboard-cost-usd"] == first.headers["x-switchboard-cost-usd"]
    assert replay.headers["x-request-id"] != first.headers["x-request-id"]
    assert len(upstream.requests) == 1  # dispatched (and charged) once


def test_another_body_is_refused(gateway: GatewayServer, upstream: MockUpstream) -> None:
    assert send(gateway, body(), "other-body").status_code == 200
    refused = send(gateway, body(temperature=1.0), "other-body")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "idempotency_key_in_use"
    assert refused.json()["error"]["param"] == "Idempotency-Key"
    assert len(upstream.requests) == 1


def test_a_request_still_running_is_refused(gateway: GatewayServer, upstream: MockUpstream) -> None:
    upstream.enqueue(JSONReply(delay=2.0))
    answers: list[httpx.Response] = []
    first = threading.Thread(target=lambda: answers.append(send(gateway, body(), "slow")))
    first.start()
    assert upstream.wait_for_requests(1, timeout=5)
    refused = send(gateway, body(), "slow")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "idempotency_key_in_use"
    assert "in progress" in refused.json()["error"]["message"]
    assert refused.headers["retry-after"] == "1"
    first.join(timeout=10)
    assert answers[0].status_code == 200


def test_an_error_releases_the_key(gateway: GatewayServer, upstream: MockUpstream) -> None:
    upstream.enqueue(ErrorReply(400, "no", type="invalid_request_error"))
    assert send(gateway, body(), "after-error").status_code == 400
    wait_until(lambda: send(gateway, body(), "after-error").status_code == 200, 5)
    assert len(upstream.requests) >= 2


def test_streams_ignore_the_key(gateway: GatewayServer, upstream: MockUpstream) -> None:
    for _ in range(2):
        response = send(gateway, body(stream=True), "a-stream")
        assert response.status_code == 200
        assert response.headers["x-switchboard-idempotency"] == "ignored_streaming"
    assert len(upstream.requests) == 2


def test_keys_are_scoped_per_gateway_key(gateway: GatewayServer, upstream: MockUpstream) -> None:
    assert send(gateway, body(), "shared", KEY_A).status_code == 200
    other = send(gateway, body(), "shared", KEY_B)
    assert other.status_code == 200 and "idempotent-replayed" not in other.headers
    assert len(upstream.requests) == 2


def test_an_overlong_key_is_refused(gateway: GatewayServer) -> None:
    response = send(gateway, body(), "x" * 256)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Idempotency-Key"
