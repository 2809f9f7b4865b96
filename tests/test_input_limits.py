"""Bounds on requests and browsers: each a clear 4xx in the OpenAI envelope, never a 500,
never a traceback in the log; only JSON bodies are read; CORS is off unless configured;
URLs in requests are never fetched."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway_server import GatewayServer, upstream_config
from tests.mock_upstream import MockUpstream
from tests.routing_setup import HELLO

pytestmark = pytest.mark.usefixtures("upstream")


@pytest.fixture(scope="module")
def gateway(shared_upstream: MockUpstream) -> Iterator[GatewayServer]:
    config = upstream_config(shared_upstream.url)
    config["models"]["capped-model"] = {
        "deployments": [
            {
                "provider": "mock",
                "model": "a",
                "input_per_mtok": 1,
                "output_per_mtok": 1,
                "capabilities": {"max_output_tokens": 4096},
            },
            {
                "provider": "mock",
                "model": "b",
                "input_per_mtok": 1,
                "output_per_mtok": 1,
                "capabilities": {"max_output_tokens": 8192},
            },
        ]
    }
    config["limits"] = {"max_messages": 50, "max_json_depth": 32, "max_n": 4}
    server = GatewayServer(config).start()
    yield server
    server.stop()


def refused(response: httpx.Response, status: int, code: str, param: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["param"]) == (code, param), error
    assert error["type"] == "invalid_request_error"


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "test-model", "messages": HELLO, **fields}


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
    ],
)
def test_only_json_bodies_are_read(
    gateway: GatewayServer, upstream: MockUpstream, content_type: str | None
) -> None:
    # what a web page may send to any origin without a preflight (a typeless Blob: none)
    headers = {"content-type": content_type} if content_type else {}
    request = httpx.Request(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        content=b'{"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}',
    )
    request.headers.pop("content-type", None)
    request.headers.update(headers)
    with httpx.Client(timeout=10) as client:
        response = client.send(request)
    refused(response, 415, "unsupported_media_type")
    assert upstream.requests == []


def test_json_with_a_charset_is_read(gateway: GatewayServer) -> None:
    response = gateway.post(
        b'{"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_deep_nesting(
    gateway: GatewayServer, upstream: MockUpstream, caplog: pytest.LogCaptureFixture, depth: int
) -> None:
    nested = '{"a":' * depth + "1" + "}" * depth
    raw = '{"model": "test-model", "messages": [{"role": "user", "content": "hi"}], '
    with caplog.at_level(logging.INFO):
        response = gateway.post((raw + f'"metadata": {nested}}}').encode())
    refused(response, 400, "json_too_deep")
    assert "Traceback" not in caplog.text and "RecursionError" not in caplog.text
    assert upstream.requests == []


def test_nesting_within_the_limit_is_served(gateway: GatewayServer) -> None:
    nested: Any = 1
    for _ in range(28):
        nested = {"a": nested}
    assert gateway.post(body(metadata=nested)).status_code == 200


def test_brackets_inside_strings_do_not_count(gateway: GatewayServer) -> None:
    text = "[{" * 500
    response = gateway.post(body(messages=[{"role": "user", "content": text}] * 3))
    assert response.status_code == 200, response.text


def test_too_many_messages(gateway: GatewayServer) -> None:
    refused(gateway.post(body(messages=HELLO * 51)), 400, "too_many_messages", "messages")
    assert gateway.post(body(messages=HELLO * 50)).status_code == 200


def test_n_above_the_configured_maximum(gateway: GatewayServer) -> None:
    refused(gateway.post(body(n=5)), 400, "invalid_value", "n")
    refused(gateway.post(body(n=1000)), 400, "invalid_value", "n")


@pytest.mark.parametrize(
    "functions",
    [[{"x": 1}], [1], [{"name": 3}], "nope", [{"name": "f", "parameters": "no"}]],
)
def test_malformed_functions(
    gateway: GatewayServer, caplog: pytest.LogCaptureFixture, functions: Any
) -> None:
    response = gateway.post(body(functions=functions))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"].startswith("functions")
    assert "Traceback" not in caplog.text


def test_max_tokens_above_every_deployments_cap(gateway: GatewayServer) -> None:
    response = gateway.post(body(model="capped-model", max_tokens=9000))
    refused(response, 400, "max_tokens_exceeds_hard_cap", "max_tokens")
    assert "8192" in response.json()["error"]["message"]
    # within one deployment's cap: routing picks that one
    assert gateway.post(body(model="capped-model", max_tokens=8000)).status_code == 200


def test_no_cors_without_config(gateway: GatewayServer) -> None:
    preflight = httpx.options(
        f"{gateway.url}/v1/chat/completions",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    answer = gateway.post(body(), headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in answer.headers


def test_cors_for_listed_origins(gateway_factory: Any, shared_upstream: MockUpstream) -> None:
    config = upstream_config(shared_upstream.url)
    config["cors"] = {"allow_origins": ["https://app.example"]}
    server = gateway_factory(config)
    allowed = httpx.options(
        f"{server.url}/v1/chat/completions",
        headers={
            "origin": "https://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,authorization",
        },
    )
    assert allowed.status_code in (200, 204)
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    other = httpx.options(
        f"{server.url}/v1/chat/completions",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert other.headers.get("access-control-allow-origin") != "https://evil.example"


def test_urls_in_requests_are_never_fetched(gateway: GatewayServer) -> None:
    # a listening socket the request points at: the gateway must never connect to it
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/cat.png"
        image = {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
        response = gateway.post(body(messages=[image], metadata={"callback": url}))
        assert response.status_code == 200
        with pytest.raises(BlockingIOError):
            listener.accept()
