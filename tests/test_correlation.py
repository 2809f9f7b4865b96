"""Correlation: the client's `x-request-id` (when sane) or ours goes to every upstream
try, under the header that vendor's API reads, and W3C trace context is propagated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from providers.correlation import valid_traceparent, valid_tracestate
from tests.gateway_server import GatewayServer
from tests.mock_upstream import ErrorReply, MockUpstream
from tests.routing_setup import HELLO, routed_config

StartGateway = Callable[[dict[str, Any]], GatewayServer]
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def body(stream: bool = False) -> dict[str, Any]:
    return {"model": "m", "messages": HELLO, "stream": stream}


@pytest.fixture
def two_upstreams(
    gateway_factory: StartGateway, mock_upstream_factory: Callable[[], MockUpstream]
) -> tuple[GatewayServer, MockUpstream, MockUpstream]:
    """`a` is cheaper, so tried first; one retry per deployment."""
    a, b = mock_upstream_factory(), mock_upstream_factory()
    config = routed_config({"m": [("a", 1.0), ("b", 2.0)]}, {"a": a.url, "b": b.url})
    config["routing"]["retries"] = {"attempts": 2, "backoff_initial": 0.01}
    return gateway_factory(config), a, b


@pytest.mark.parametrize("stream", [False, True])
def test_the_clients_id_reaches_every_try(
    two_upstreams: tuple[GatewayServer, MockUpstream, MockUpstream], stream: bool
) -> None:
    gateway, a, b = two_upstreams
    a.enqueue(ErrorReply(503, "busy", type="server_error"), ErrorReply(503, "busy"))
    answer = gateway.post(body(stream), headers={"x-request-id": "client-req-42"})
    assert answer.status_code == 200
    assert answer.headers["x-request-id"] == "client-req-42"
    tries = a.requests + b.requests
    assert len(tries) == 3  # a, a again (retry), then b (fallback)
    for sent in tries:
        # OpenAI documents X-Client-Request-Id; vLLM and most proxies read x-request-id
        assert sent.headers["x-request-id"] == "client-req-42"
        assert sent.headers["x-client-request-id"] == "client-req-42"


@pytest.mark.parametrize("given", [None, "has spaces in it", "x" * 129, "semi;colon"])
def test_ours_goes_upstream_when_the_client_sent_none_or_an_unusable_one(
    gateway_factory: StartGateway, upstream: MockUpstream, given: str | None
) -> None:
    gateway = gateway_factory(routed_config({"m": [("a", 1.0)]}, {"a": upstream.url}))
    headers = {} if given is None else {"x-request-id": given}
    answer = gateway.post(body(), headers=headers)
    ours = answer.headers["x-request-id"]
    assert ours != given
    assert upstream.last_request.headers["x-request-id"] == ours
    assert answer.json()["routing_metadata"]["request_id"] == ours


def test_trace_context_is_propagated(gateway_factory: StartGateway, upstream: MockUpstream) -> None:
    gateway = gateway_factory(routed_config({"m": [("a", 1.0)]}, {"a": upstream.url}))
    gateway.post(body(), headers={"traceparent": TRACEPARENT, "tracestate": "vendor=abc,x=1"})
    sent = upstream.last_request.headers
    assert sent["traceparent"] == TRACEPARENT
    assert sent["tracestate"] == "vendor=abc,x=1"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
        {"traceparent": TRACEPARENT.upper()},
        {"traceparent": "garbage", "tracestate": "vendor=abc"},
        {"tracestate": "vendor=abc"},  # without a traceparent it means nothing
    ],
)
def test_missing_or_invalid_trace_context_is_not_sent(
    gateway_factory: StartGateway, upstream: MockUpstream, headers: dict[str, str]
) -> None:
    gateway = gateway_factory(routed_config({"m": [("a", 1.0)]}, {"a": upstream.url}))
    assert gateway.post(body(), headers=headers).status_code == 200
    sent = upstream.last_request.headers
    assert "traceparent" not in sent and "tracestate" not in sent


def test_azure_gets_its_own_correlation_header(
    gateway_factory: StartGateway, upstream: MockUpstream
) -> None:
    config = {
        "auth": "none",
        "providers": {
            "az": {
                "kind": "azure",
                "endpoint": f"http://127.0.0.1:{upstream.port}",
                "api_key": "azure-key-0123456789",
            }
        },
        "models": {
            "m": {
                "deployments": [
                    {"provider": "az", "model": "gpt", "input_per_mtok": 1, "output_per_mtok": 2}
                ]
            }
        },
    }
    gateway = gateway_factory(config)
    gateway.post(body(), headers={"x-request-id": "az-req-1"})
    sent = upstream.last_request.headers
    assert sent["x-ms-client-request-id"] == "az-req-1"
    assert sent["x-request-id"] == "az-req-1"


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (TRACEPARENT, True),
        ("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future", True),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", False),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", False),
        ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", False),
        ("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", False),
        ("", False),
        (None, False),
    ],
)
def test_traceparent_validation(value: str | None, valid: bool) -> None:
    assert (valid_traceparent(value) is not None) is valid


def test_tracestate_validation() -> None:
    assert valid_tracestate("a=1,b=2") == "a=1,b=2"
    assert valid_tracestate("x" * 513) is None
    assert valid_tracestate("a=\n1") is None
