"""Gateway keys: accepted as a Bearer token or `X-Api-Key`, checked against SHA-256
hashes in the config, limited to their `allowed_models`; `auth: none` must be explicit."""

from __future__ import annotations

import hashlib
import http.client
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from gateway.config import ConfigError, parse_config
from tests.gateway_server import GatewayServer, upstream_config
from tests.mock_upstream import MockUpstream

TEAM_KEY = "sb-team-a-0123456789abcdef"
HELLO = [{"role": "user", "content": "hi"}]
pytestmark = pytest.mark.usefixtures("upstream")


def keyed_config(upstream_url: str) -> dict[str, Any]:
    """The mock provider serving `test-model` and `prod-model`; one key for `test-*`."""
    config = upstream_config(upstream_url)
    config["models"]["prod-model"] = config["models"]["test-model"]
    config["auth"] = {
        "keys": [
            {
                "name": "team-a",
                "key_sha256": hashlib.sha256(TEAM_KEY.encode()).hexdigest(),
                "allowed_models": ["test-*"],
            }
        ]
    }
    return config


@pytest.fixture(scope="module")
def gateway(shared_upstream: MockUpstream) -> Iterator[GatewayServer]:
    server = GatewayServer(keyed_config(shared_upstream.url)).start()
    yield server
    server.stop()


def ask(
    gateway: GatewayServer, headers: dict[str, str], model: str = "test-model"
) -> httpx.Response:
    return gateway.post({"model": model, "messages": HELLO}, headers=headers)


def expect_error(
    response: httpx.Response, status: int, type: str, code: str, param: str | None, mentions: str
) -> None:
    assert response.status_code == status, response.text
    assert response.headers.get("x-request-id")
    assert response.json() == {
        "error": {
            "message": response.json()["error"]["message"],
            "type": type,
            "param": param,
            "code": code,
        }
    }
    assert mentions.lower() in response.json()["error"]["message"].lower()
    assert TEAM_KEY not in response.text


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"authorization": f"Bearer {TEAM_KEY}"}, id="bearer"),
        pytest.param({"authorization": f"bearer {TEAM_KEY}"}, id="bearer-lowercase"),
        pytest.param({"x-api-key": TEAM_KEY}, id="x-api-key"),
        pytest.param(
            {"authorization": "Basic Zm9vOmJhcg==", "x-api-key": TEAM_KEY}, id="basic+x-api-key"
        ),
    ],
)
def test_valid_key_is_served(
    gateway: GatewayServer, upstream: MockUpstream, headers: dict[str, str]
) -> None:
    response = ask(gateway, headers)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hello from mock upstream"
    # the client's gateway key is ours to check, never the provider's to see
    sent = upstream.last_request.headers
    assert sent["authorization"] == "Bearer sk-upstream-secret"
    assert TEAM_KEY not in str(sent)


@pytest.mark.parametrize(
    ("headers", "mentions"),
    [
        pytest.param({}, "missing", id="no-key"),
        pytest.param({"authorization": "Bearer sb-wrong-key"}, "incorrect", id="wrong-bearer"),
        pytest.param({"x-api-key": "sb-wrong-key"}, "incorrect", id="wrong-x-api-key"),
        pytest.param({"authorization": "Bearer"}, "missing", id="bearer-no-token"),
        pytest.param({"authorization": TEAM_KEY}, "missing", id="no-scheme"),
        pytest.param({"x-api-key": ""}, "missing", id="x-api-key-empty"),
        pytest.param({"authorization": f"Bearer {TEAM_KEY}x"}, "incorrect", id="key-plus-one"),
        pytest.param(
            {"authorization": f"Bearer {hashlib.sha256(TEAM_KEY.encode()).hexdigest()}"},
            "incorrect",
            id="the-hash-itself",
        ),
    ],
)
def test_bad_key_is_refused(
    gateway: GatewayServer, upstream: MockUpstream, headers: dict[str, str], mentions: str
) -> None:
    response = ask(gateway, headers)
    expect_error(response, 401, "authentication_error", "invalid_api_key", None, mentions)
    assert upstream.requests == []


def test_bearer_with_an_empty_token_is_refused(gateway: GatewayServer) -> None:
    # httpx will not send a header value with trailing whitespace; http.client will
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        body = json.dumps({"model": "test-model", "messages": HELLO})
        headers = {"authorization": "Bearer ", "content-type": "application/json"}
        connection.request("POST", "/v1/chat/completions", body=body, headers=headers)
        answer = connection.getresponse()
        status, payload = answer.status, json.loads(answer.read())
    finally:
        connection.close()
    assert status == 401
    error = payload["error"]
    assert (error["type"], error["code"], error["param"]) == (
        "authentication_error",
        "invalid_api_key",
        None,
    )
    assert "missing" in error["message"].lower()


def test_auth_comes_before_body_validation(gateway: GatewayServer) -> None:
    response = gateway.post(b"{not json")
    expect_error(response, 401, "authentication_error", "invalid_api_key", None, "missing")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"model": "prod-model"}, id="model"),
        pytest.param({"models": ["test-model", "prod-model"]}, id="models-list"),
        pytest.param({"gateway": {"models": ["prod-model"]}}, id="gateway-models"),
        pytest.param({"model": "mock/prod-model"}, id="provider-slug"),
    ],
)
def test_model_outside_allowed_models_is_forbidden(
    gateway: GatewayServer, upstream: MockUpstream, body: dict[str, Any]
) -> None:
    response = gateway.post(
        {**body, "messages": HELLO}, headers={"authorization": f"Bearer {TEAM_KEY}"}
    )
    expect_error(response, 403, "permission_error", "model_not_allowed", "model", "prod-model")
    assert "team-a" in response.json()["error"]["message"]
    assert upstream.requests == []


def test_sdk_with_the_right_key(gateway: GatewayServer) -> None:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=TEAM_KEY, max_retries=0) as client:
        response = client.chat.completions.create(model="test-model", messages=HELLO)
    assert response.choices[0].message.content == "Hello from mock upstream"


def test_sdk_with_a_wrong_key_raises_authentication_error(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    with (
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sb-wrong", max_retries=0) as client,
        pytest.raises(openai.AuthenticationError) as raised,
    ):
        client.chat.completions.create(model="test-model", messages=HELLO)
    assert raised.value.status_code == 401
    assert raised.value.code == "invalid_api_key"
    assert raised.value.type == "authentication_error"
    assert upstream.requests == []


def test_sdk_with_a_forbidden_model_raises_permission_denied(gateway: GatewayServer) -> None:
    with (
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=TEAM_KEY, max_retries=0) as client,
        pytest.raises(openai.PermissionDeniedError) as raised,
    ):
        client.chat.completions.create(model="prod-model", messages=HELLO)
    assert raised.value.code == "model_not_allowed"


def test_auth_none_needs_no_key(
    upstream: MockUpstream, gateway_factory: Callable[[dict[str, Any]], GatewayServer]
) -> None:
    open_gateway = gateway_factory(upstream_config(upstream.url))  # auth: none
    assert open_gateway.config.auth == "none"
    response = ask(open_gateway, {})
    assert response.status_code == 200, response.text
    # a key that the open gateway does not know is not an error either
    assert ask(open_gateway, {"authorization": "Bearer anything"}).status_code == 200


def test_missing_auth_section_is_refused() -> None:
    config = keyed_config("http://127.0.0.1:9/v1")
    del config["auth"]
    with pytest.raises(ConfigError, match="auth"):
        parse_config(config)


@pytest.mark.parametrize(
    ("auth", "where"),
    [
        pytest.param(None, "auth", id="null"),
        pytest.param("off", "auth", id="not-none"),
        pytest.param(
            {"keys": [{"name": "x", "key_sha256": TEAM_KEY}]},
            "auth.keys[0].key_sha256",
            id="plain-key",
        ),
        pytest.param({"keys": [{"name": "x"}]}, "auth.keys[0]", id="no-hash"),
    ],
)
def test_bad_auth_section_is_refused(auth: Any, where: str) -> None:
    config = keyed_config("http://127.0.0.1:9/v1")
    config["auth"] = auth
    with pytest.raises(ConfigError) as raised:
        parse_config(config)
    assert str(raised.value).startswith(where)


@pytest.mark.parametrize("model", ["mock/test-model", "test-model:floor"])
def test_allowed_models_also_match_the_canonical_model(
    gateway: GatewayServer, upstream: MockUpstream, model: str
) -> None:
    response = gateway.post(
        {"model": model, "messages": HELLO}, headers={"authorization": f"Bearer {TEAM_KEY}"}
    )
    assert response.status_code == 200, response.text
    assert upstream.requests[0].json["model"] == "upstream-model-id"


def test_model_listing_needs_a_key_and_shows_only_allowed_models(gateway: GatewayServer) -> None:
    refused = httpx.get(f"{gateway.url}/v1/models")
    expect_error(refused, 401, "authentication_error", "invalid_api_key", None, "missing")
    listed = httpx.get(f"{gateway.url}/v1/models", headers={"x-api-key": TEAM_KEY})
    assert [m["id"] for m in listed.json()["data"]] == ["test-model"]
    hidden = httpx.get(f"{gateway.url}/v1/models/prod-model", headers={"x-api-key": TEAM_KEY})
    expect_error(hidden, 404, "not_found_error", "model_not_found", "model", "prod-model")
