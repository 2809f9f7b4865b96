"""Malformed and out-of-range requests: each one is a clean OpenAI error envelope with
the right status, `type`, `code` and `param`, and none of them reaches the upstream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway_server import GatewayServer, upstream_config
from tests.mock_upstream import MockUpstream

MAX_REQUEST_BYTES = 2048
HELLO = [{"role": "user", "content": "hi"}]
pytestmark = pytest.mark.usefixtures("upstream")


@pytest.fixture(scope="module")
def gateway(shared_upstream: MockUpstream) -> Iterator[GatewayServer]:
    config = upstream_config(shared_upstream.url)
    config["limits"] = {"max_request_bytes": MAX_REQUEST_BYTES}
    server = GatewayServer(config).start()
    yield server
    server.stop()


def body(**fields: Any) -> dict[str, Any]:
    """A valid request, with fields overridden (a value of None removes the field)."""
    out: dict[str, Any] = {"model": "test-model", "messages": HELLO, **fields}
    return {k: v for k, v in out.items() if v is not None}


def expect_error(
    response: httpx.Response,
    status: int,
    type: str,
    code: str,
    param: str | None = None,
    mentions: str | None = None,
) -> dict[str, Any]:
    """Assert an OpenAI error envelope, exactly; return its `error` object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("x-request-id"), "error answers carry x-request-id too"
    payload = response.json()
    assert set(payload) == {"error"}
    error = payload["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"], error["param"]) == (type, code, param)
    assert isinstance(error["message"], str) and error["message"]
    if mentions is not None:
        assert mentions.lower() in error["message"].lower()
    assert "Traceback" not in response.text
    return error


def invalid(
    response: httpx.Response, param: str | None, code: str = "invalid_value", mentions: str = ""
) -> None:
    expect_error(response, 400, "invalid_request_error", code, param, mentions or param)


# --------------------------------------------------------------------------- body shape


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"{", id="truncated"),
        pytest.param(b'{"model": "test-model",}', id="trailing-comma"),
        pytest.param(b"not json at all", id="text"),
        pytest.param(b"", id="empty"),
    ],
)
def test_invalid_json(gateway: GatewayServer, upstream: MockUpstream, raw: bytes) -> None:
    invalid(gateway.post(raw), None, "invalid_json", "json")
    assert upstream.requests == []


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'[{"role": "user", "content": "hi"}]', id="array"),
        pytest.param(b'"hello"', id="string"),
        pytest.param(b"42", id="number"),
        pytest.param(b"null", id="null"),
    ],
)
def test_body_must_be_an_object(gateway: GatewayServer, upstream: MockUpstream, raw: bytes) -> None:
    invalid(gateway.post(raw), None, "invalid_json", "object")
    assert upstream.requests == []


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            b'{"model": "test-model", "messages": [{"role": "user", "content": "\xff"}]}',
            id="in-content",
        ),
        pytest.param(
            b'{"model": "test-model", "messages": [{"role": "user", "content": "hi"}],'
            b' "custom_field": "caf\xe9"}',
            id="in-forwarded-field",
        ),
        pytest.param(b'\xfe\xff{"model": "test-model"}', id="leading"),
    ],
)
def test_non_utf8_body(gateway: GatewayServer, upstream: MockUpstream, raw: bytes) -> None:
    invalid(gateway.post(raw), None, "invalid_json", "UTF-8")
    assert upstream.requests == []


# --------------------------------------------------------------------------- messages


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        pytest.param({"messages": None}, "messages", "missing_field", id="missing"),
        pytest.param({"messages": []}, "messages", "invalid_value", id="empty"),
        pytest.param({"messages": "hi"}, "messages", "invalid_value", id="not-a-list"),
        pytest.param({"messages": {"role": "user"}}, "messages", "invalid_value", id="object"),
        pytest.param({"messages": ["hi"]}, "messages[0]", "invalid_value", id="item-not-object"),
        pytest.param(
            {"messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
            "invalid_value",
            id="content-int",
        ),
        pytest.param(
            {"messages": [*HELLO, {"role": "robot", "content": "beep"}]},
            "messages[1].role",
            "invalid_value",
            id="unknown-role",
        ),
        pytest.param(
            {"messages": [{"content": "hi"}]}, "messages[0].role", "missing_field", id="no-role"
        ),
        pytest.param(
            {"messages": [{"role": "user"}]},
            "messages[0].content",
            "missing_field",
            id="user-without-content",
        ),
        pytest.param(
            {"messages": [{"role": "tool", "content": "42"}]},
            "messages[0].tool_call_id",
            "missing_field",
            id="tool-without-call-id",
        ),
    ],
)
def test_bad_messages(
    gateway: GatewayServer,
    upstream: MockUpstream,
    fields: dict[str, Any],
    param: str,
    code: str,
) -> None:
    invalid(gateway.post(body(**fields)), param, code)
    assert upstream.requests == []


# --------------------------------------------------------------------------- model


def test_unknown_model(gateway: GatewayServer, upstream: MockUpstream) -> None:
    response = gateway.post(body(model="no-such-model"))
    expect_error(response, 404, "not_found_error", "model_not_found", "model", "no-such-model")
    assert upstream.requests == []


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"model": None}, id="absent"),
        pytest.param({"model": None, "models": []}, id="empty-models"),
        pytest.param({"model": None, "gateway": {"models": []}}, id="empty-gateway-models"),
    ],
)
def test_no_model(gateway: GatewayServer, upstream: MockUpstream, fields: dict[str, Any]) -> None:
    invalid(gateway.post(body(**fields)), "model", "missing_field")
    assert upstream.requests == []


def test_model_not_a_string(gateway: GatewayServer, upstream: MockUpstream) -> None:
    invalid(gateway.post(body(model=42)), "model")
    assert upstream.requests == []


def test_model_together_with_gateway_models(gateway: GatewayServer, upstream: MockUpstream) -> None:
    response = gateway.post(body(gateway={"models": ["test-model"]}))
    invalid(response, "gateway.models", "conflicting_fields", "gateway.models")
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        pytest.param({"routing": {"strategy": "fastest"}}, "routing.strategy", id="routing"),
        pytest.param(
            {"model": None, "gateway": {"models": ["test-model"], "routing": {"strategy": 1}}},
            "gateway.routing.strategy",
            id="gateway-routing",
        ),
        pytest.param({"routing": {"stratgy": "cost"}}, "routing", id="unknown-routing-key"),
        pytest.param({"provider": {"sort": "cheapest"}}, "provider.sort", id="provider-sort"),
    ],
)
def test_bad_routing_controls(
    gateway: GatewayServer, upstream: MockUpstream, fields: dict[str, Any], param: str
) -> None:
    invalid(gateway.post(body(**fields)), param)
    assert upstream.requests == []


# --------------------------------------------------------------------------- ranges

STOPS = ["a", "b", "c", "d"]

OUT_OF_RANGE = [
    ("temperature", -0.01),
    ("temperature", 2.01),
    ("top_p", -0.01),
    ("top_p", 1.01),
    ("presence_penalty", -2.01),
    ("presence_penalty", 2.01),
    ("frequency_penalty", -2.01),
    ("frequency_penalty", 2.01),
    ("n", 0),
    ("n", 129),
    ("top_logprobs", -1),
    ("top_logprobs", 21),
    ("stop", [*STOPS, "e"]),
    ("max_tokens", 0),
    ("max_tokens", -5),
    ("max_completion_tokens", 0),
]

IN_RANGE_EDGES = [
    ("temperature", 0),
    ("temperature", 2),
    ("top_p", 0),
    ("top_p", 1),
    ("presence_penalty", -2),
    ("presence_penalty", 2),
    ("frequency_penalty", -2),
    ("frequency_penalty", 2),
    ("n", 1),
    ("n", 128),
    ("top_logprobs", 0),
    ("top_logprobs", 20),
    ("stop", STOPS),
    ("stop", "single"),
    ("max_tokens", 1),
    ("max_completion_tokens", 1),
]


def _case_id(field: str, value: Any) -> str:
    return f"{field}={len(value)}-items" if isinstance(value, list) else f"{field}={value}"


@pytest.mark.parametrize(
    ("field", "value"), [pytest.param(f, v, id=_case_id(f, v)) for f, v in OUT_OF_RANGE]
)
def test_out_of_range(
    gateway: GatewayServer, upstream: MockUpstream, field: str, value: Any
) -> None:
    invalid(gateway.post(body(**{field: value})), field)
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("field", "value"), [pytest.param(f, v, id=_case_id(f, v)) for f, v in IN_RANGE_EDGES]
)
def test_in_range_edge_accepted(
    gateway: GatewayServer, upstream: MockUpstream, field: str, value: Any
) -> None:
    response = gateway.post(body(**{field: value}))
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "chat.completion"
    assert upstream.last_request.json[field] == value  # forwarded as sent


@pytest.mark.parametrize(
    ("field", "value", "param", "code"),
    [
        ("temperature", "hot", "temperature", "invalid_value"),
        ("n", 1.5, "n", "invalid_value"),
        ("stream", "yes", "stream", "invalid_value"),
        ("stop", 7, "stop", "invalid_value"),
        ("stop", ["ok", 7], "stop[1]", "invalid_value"),
        ("tool_choice", "sometimes", "tool_choice", "invalid_value"),
        ("response_format", {"type": "yaml"}, "response_format.type", "invalid_value"),
        ("tools", [{"type": "function"}], "tools[0].function", "missing_field"),
    ],
)
def test_wrong_type(
    gateway: GatewayServer, upstream: MockUpstream, field: str, value: Any, param: str, code: str
) -> None:
    invalid(gateway.post(body(**{field: value})), param, code)
    assert upstream.requests == []


# --------------------------------------------------------------------------- size


def _oversize() -> bytes:
    padding = "x" * (MAX_REQUEST_BYTES * 2)
    return httpx.Request("POST", "/", json=body(user=padding)).content


def test_oversize_body_with_content_length(gateway: GatewayServer, upstream: MockUpstream) -> None:
    response = gateway.post(_oversize())
    expect_error(response, 413, "invalid_request_error", "request_too_large", None, "too large")
    assert upstream.requests == []


def test_oversize_body_chunked(gateway: GatewayServer, upstream: MockUpstream) -> None:
    payload = _oversize()

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(payload), 512):
            yield payload[start : start + 512]

    request = httpx.Request(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        content=pieces(),
        headers={"content-type": "application/json"},
    )
    assert request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in request.headers
    with httpx.Client(timeout=10) as client:
        response = client.send(request)
    expect_error(response, 413, "invalid_request_error", "request_too_large", None, "too large")
    assert upstream.requests == []


def test_body_just_under_the_limit_is_served(gateway: GatewayServer) -> None:
    small = httpx.Request("POST", "/", json=body(user="")).content
    padded = body(user="x" * (MAX_REQUEST_BYTES - len(small)))
    assert len(httpx.Request("POST", "/", json=padded).content) == MAX_REQUEST_BYTES
    assert gateway.post(padded).status_code == 200


# --------------------------------------------------------------------------- routes


@pytest.mark.parametrize(
    ("method", "path", "status", "type", "code"),
    [
        ("POST", "/v1/chat/completion", 404, "not_found_error", "unknown_url"),
        ("GET", "/v2/nothing-here", 404, "not_found_error", "unknown_url"),
        ("GET", "/v1/chat/completions", 405, "invalid_request_error", "method_not_allowed"),
        ("PUT", "/v1/chat/completions", 405, "invalid_request_error", "method_not_allowed"),
    ],
)
def test_unknown_route_and_wrong_method(
    gateway: GatewayServer,
    upstream: MockUpstream,
    method: str,
    path: str,
    status: int,
    type: str,
    code: str,
) -> None:
    response = httpx.request(method, gateway.url + path, json=body(), timeout=10)
    expect_error(response, status, type, code, None, path)
    assert upstream.requests == []


def test_caller_request_id_is_echoed_on_errors(gateway: GatewayServer) -> None:
    response = gateway.post(b"{", headers={"x-request-id": "trace-123"})
    expect_error(response, 400, "invalid_request_error", "invalid_json")
    assert response.headers["x-request-id"] == "trace-123"
