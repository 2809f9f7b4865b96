"""Capabilities decide which deployment may serve a request, and what it drops."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway_server import GatewayServer
from tests.mock_upstream import MockUpstream
from tests.routing_setup import HELLO, IMAGE_MESSAGE, TOOL


def two_deployments(url: str, first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Model `m` on providers `first` then `second`, both the mock upstream."""
    provider = {"kind": "openai", "base_url": url, "api_key": "k"}
    prices = {"input_per_mtok": 1, "output_per_mtok": 2}
    return {
        "auth": "none",
        # no exploration: it would send 5% of requests to `second` first, at random
        "routing": {"exploration": {"share": 0.0}},
        "providers": {"first": provider, "second": provider},
        "models": {
            "m": {
                "deployments": [
                    {"provider": "first", "model": "first-id", **prices, **first},
                    {"provider": "second", "model": "second-id", **prices, **second},
                ]
            }
        },
    }


@pytest.mark.parametrize(
    ("extra", "lacking"),
    [
        ({"tools": [TOOL]}, {"tools": False}),
        ({"messages": [IMAGE_MESSAGE]}, {"vision": False}),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "object"}},
                }
            },
            {"json_schema": False},
        ),
        ({"max_tokens": 995}, {"context_window": 1000}),  # + ~10 prompt tokens
        ({"max_completion_tokens": 9000}, {"max_output_tokens": 8192}),
    ],
    ids=["tools", "vision", "json_schema", "context_window", "max_output_tokens"],
)
def test_a_deployment_lacking_a_capability_is_passed_over(
    gateway_factory: Any, upstream: MockUpstream, extra: dict[str, Any], lacking: dict[str, Any]
) -> None:
    gateway: GatewayServer = gateway_factory(
        two_deployments(upstream.url, {"capabilities": lacking}, {})
    )
    response = gateway.post({"model": "m", "messages": HELLO, **extra})
    assert response.status_code == 200, response.text
    assert response.headers["x-switchboard-provider"] == "second"
    assert upstream.last_request.json["model"] == "second-id"


def test_no_capable_deployment_is_a_400_naming_what_is_missing(
    gateway_factory: Any, upstream: MockUpstream
) -> None:
    gateway = gateway_factory(
        two_deployments(
            upstream.url, {"capabilities": {"tools": False}}, {"capabilities": {"tools": False}}
        )
    )
    response = gateway.post({"model": "m", "messages": HELLO, "tools": [TOOL]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "no_candidate",
        "model",
    )
    assert "first/m lacks tools" in error["message"]
    assert "second/m lacks tools" in error["message"]
    assert upstream.requests == []


def test_a_parameter_the_deployment_cannot_honour_is_dropped_and_named(
    gateway_factory: Any, upstream: MockUpstream
) -> None:
    gateway = gateway_factory(
        two_deployments(upstream.url, {"capabilities": {"logprobs": False}}, {})
    )
    body = {"model": "m", "messages": HELLO, "logprobs": True, "top_logprobs": 2, "seed": 7}
    response = gateway.post(body)
    assert response.status_code == 200, response.text
    assert response.headers["x-switchboard-provider"] == "first"
    assert response.headers["x-switchboard-dropped-params"] == "logprobs,top_logprobs"
    sent = upstream.last_request.json
    assert "logprobs" not in sent and "top_logprobs" not in sent
    assert sent["seed"] == 7


def test_require_parameters_skips_a_deployment_that_would_drop_one(
    gateway_factory: Any, upstream: MockUpstream
) -> None:
    gateway = gateway_factory(
        two_deployments(upstream.url, {"capabilities": {"logprobs": False}}, {})
    )
    body = {
        "model": "m",
        "messages": HELLO,
        "logprobs": True,
        "provider": {"require_parameters": True},
    }
    response = gateway.post(body)
    assert response.status_code == 200, response.text
    assert response.headers["x-switchboard-provider"] == "second"
    assert "x-switchboard-dropped-params" not in response.headers
    assert upstream.last_request.json["logprobs"] is True


def test_streams_name_dropped_parameters_too(gateway_factory: Any, upstream: MockUpstream) -> None:
    gateway = gateway_factory(
        two_deployments(upstream.url, {"capabilities": {"multiple_choices": False}}, {})
    )
    response = gateway.post({"model": "m", "messages": HELLO, "n": 2, "stream": True})
    assert response.status_code == 200, response.text
    assert response.headers["x-switchboard-dropped-params"] == "n"
    assert "n" not in upstream.last_request.json


def test_an_unknown_model_anywhere_in_models_is_not_found(
    gateway_factory: Any, upstream: MockUpstream
) -> None:
    gateway = gateway_factory(two_deployments(upstream.url, {}, {}))
    response = gateway.post({"models": ["m", "no-such-model"], "messages": HELLO})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    assert "no-such-model" in response.json()["error"]["message"]
    assert upstream.requests == []


def test_the_next_model_serves_when_no_deployment_of_the_first_can(
    gateway_factory: Any, upstream: MockUpstream
) -> None:
    config = two_deployments(upstream.url, {"capabilities": {"tools": False}}, {})
    first = config["models"]["m"]["deployments"]
    config["models"] = {"plain": {"deployments": [first[0]]}, "m": {"deployments": [first[1]]}}
    gateway = gateway_factory(config)
    response = gateway.post({"models": ["plain", "m"], "messages": HELLO, "tools": [TOOL]})
    assert response.status_code == 200, response.text
    assert response.json()["routing_metadata"]["model_canonical"] == "m"
    assert upstream.last_request.json["model"] == "second-id"
