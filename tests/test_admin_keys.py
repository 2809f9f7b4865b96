"""Keys kept in the store: the admin API (`/v1/admin/keys`), `switchboard keys` through
a gateway, and `GET /v1/usage` / `switchboard usage` from the spend ledger."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import openai
import pytest

from gateway.cli import main
from tests.gateway_server import GatewayServer, upstream_config
from tests.mock_upstream import MockUpstream
from tests.routing_setup import HELLO, wait_until

ADMIN_KEY = "sk-admin-keys-tests"
CONFIG_KEY = "sb-config-key-000000000001"

pytestmark = pytest.mark.usefixtures("upstream")


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def gateway(shared_upstream: MockUpstream) -> Iterator[GatewayServer]:
    config = upstream_config(shared_upstream.url)
    config["auth"] = {
        "teams": [{"name": "search"}],
        "keys": [{"name": "from-config", "key_sha256": digest(CONFIG_KEY), "team": "search"}],
    }
    config["admin"] = {"key_sha256": digest(ADMIN_KEY)}
    server = GatewayServer(config).start()
    yield server
    server.stop()


def admin(gateway: GatewayServer, method: str, path: str = "", **kwargs: Any) -> httpx.Response:
    key = kwargs.pop("key", ADMIN_KEY)
    return httpx.request(
        method,
        f"{gateway.url}/v1/admin/keys{path}",
        headers={"authorization": f"Bearer {key}"},
        timeout=5,
        **kwargs,
    )


def chat(gateway: GatewayServer, key: str) -> httpx.Response:
    return gateway.post(
        {"model": "test-model", "messages": HELLO}, headers={"authorization": f"Bearer {key}"}
    )


@pytest.fixture
def created(gateway: GatewayServer, request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    name = "k-" + hashlib.sha1(request.node.name.encode()).hexdigest()[:10]
    response = admin(gateway, "POST", json={"name": name, "team": "search", "rpm": 100})
    assert response.status_code == 201, response.text
    yield response.json()
    admin(gateway, "DELETE", f"/{name}")


def test_create_returns_the_plain_key_once(gateway: GatewayServer, created: dict[str, Any]) -> None:
    plain = created["key"]
    assert plain.startswith("sb-") and len(plain) == 46
    assert created["prefix"] == plain[:8]
    assert (created["source"], created["team"], created["rpm"]) == ("store", "search", 100)
    # the store keeps its hash, never the key
    stored = gateway.app.state.services.governance.store._keys[created["name"]]
    assert plain.encode() not in stored and digest(plain).encode() in stored
    answer = chat(gateway, plain)
    assert answer.status_code == 200
    assert answer.headers["x-ratelimit-limit-requests"] == "100"
    listed = admin(gateway, "GET").json()["data"]
    assert {k["name"] for k in listed} >= {"from-config", created["name"]}
    assert all("key" not in k and "key_sha256" not in k for k in listed)
    assert plain not in admin(gateway, "GET").text


def test_listing_shows_spend_and_last_use(gateway: GatewayServer, created: dict[str, Any]) -> None:
    assert chat(gateway, created["key"]).status_code == 200

    def spent() -> dict[str, Any]:
        (key,) = [k for k in admin(gateway, "GET").json()["data"] if k["name"] == created["name"]]
        return dict(key)

    wait_until(lambda: spent()["spend"]["today_usd"] > 0, 5)
    info = spent()
    assert info["spend"]["month_usd"] == info["spend"]["today_usd"]
    assert info["spend"]["reserved_usd"] == 0
    assert info["last_used_at"] is not None


def test_update_and_disable(gateway: GatewayServer, created: dict[str, Any]) -> None:
    name, plain = created["name"], created["key"]
    changed = admin(gateway, "PATCH", f"/{name}", json={"rpm": 7, "allowed_models": ["x-*"]})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["rpm"], changed.json()["allowed_models"]) == (7, ["x-*"])
    assert chat(gateway, plain).json()["error"]["code"] == "model_not_allowed"
    admin(gateway, "PATCH", f"/{name}", json={"allowed_models": ["*"], "rpm": None})
    assert "x-ratelimit-limit-requests" not in chat(gateway, plain).headers
    assert admin(gateway, "PATCH", f"/{name}", json={"disabled": True}).json()["disabled"]
    assert chat(gateway, plain).status_code == 401
    admin(gateway, "PATCH", f"/{name}", json={"disabled": False})
    assert chat(gateway, plain).status_code == 200


def test_revoke(gateway: GatewayServer, created: dict[str, Any]) -> None:
    assert chat(gateway, created["key"]).status_code == 200
    revoked = admin(gateway, "DELETE", f"/{created['name']}")
    assert revoked.json() == {"name": created["name"], "revoked": True}
    assert chat(gateway, created["key"]).status_code == 401
    again = admin(gateway, "DELETE", f"/{created['name']}")
    assert (again.status_code, again.json()["error"]["code"]) == (404, "key_not_found")


def test_an_expired_key_is_refused(gateway: GatewayServer) -> None:
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    response = admin(gateway, "POST", json={"name": "expired", "expires_at": past})
    assert response.status_code == 201
    refused = chat(gateway, response.json()["key"])
    assert refused.status_code == 401 and "expired" in refused.json()["error"]["message"]
    admin(gateway, "DELETE", "/expired")


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "", {"name": "from-config"}, 409, "key_exists"),
        ("POST", "", {"name": "bad name!"}, 400, "invalid_value"),
        ("POST", "", {"name": "x", "team": "nobody"}, 400, "invalid_value"),
        ("POST", "", {"name": "x", "rpm": 0}, 400, "invalid_value"),
        ("POST", "", {"name": "x", "what": 1}, 400, "invalid_value"),
        ("PATCH", "/from-config", {"rpm": 5}, 409, "key_in_config"),
        ("PATCH", "/nobody", {"rpm": 5}, 404, "key_not_found"),
        ("PATCH", "/nobody", {"rpm": "many"}, 400, "invalid_value"),
        ("DELETE", "/from-config", None, 409, "key_in_config"),
    ],
)
def test_refusals(
    gateway: GatewayServer, method: str, path: str, body: Any, status: int, code: str
) -> None:
    response = admin(gateway, method, path, json=body)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def test_the_admin_key_is_required(gateway: GatewayServer) -> None:
    assert admin(gateway, "GET", key=CONFIG_KEY).status_code == 401
    assert admin(gateway, "POST", json={"name": "x"}, key="nope").status_code == 401


def test_a_name_taken_in_the_store(gateway: GatewayServer, created: dict[str, Any]) -> None:
    response = admin(gateway, "POST", json={"name": created["name"]})
    assert (response.status_code, response.json()["error"]["code"]) == (409, "key_exists")


def test_keys_command_through_the_gateway(
    gateway: GatewayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    target = ["--gateway", gateway.url, "--admin-key", ADMIN_KEY]
    assert main(["keys", "create", "cli-key", "--rpm", "5", "--daily", "2", *target]) == 0
    out = capsys.readouterr().out
    plain = out.splitlines()[1]
    assert plain.startswith("sb-") and "only time" in out
    assert chat(gateway, plain).status_code == 200
    assert main(["keys", "list", *target]) == 0
    table = capsys.readouterr().out
    assert "cli-key" in table and "from-config" in table and plain not in table
    assert main(["keys", "update", "cli-key", "--rpm", "none", "--disable", *target]) == 0
    assert chat(gateway, plain).status_code == 401
    assert main(["keys", "revoke", "cli-key", *target]) == 0
    assert main(["keys", "revoke", "cli-key", *target]) == 1
    assert "No key is named" in capsys.readouterr().err


# --------------------------------------------------------------------------- usage


def usage(gateway: GatewayServer, key: str, **params: str) -> httpx.Response:
    return httpx.get(
        f"{gateway.url}/v1/usage",
        params=params,
        headers={"authorization": f"Bearer {key}"},
        timeout=5,
    )


def test_usage_for_the_admin_and_for_a_key(
    gateway: GatewayServer, created: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert chat(gateway, created["key"]).status_code == 200
    assert chat(gateway, CONFIG_KEY).status_code == 200

    def rows(key: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = usage(gateway, key, group_by="key,model").json()["data"]
        return data

    wait_until(lambda: {created["name"], "from-config"} <= {r["key"] for r in rows(ADMIN_KEY)}, 5)
    own = rows(created["key"])
    assert [r["key"] for r in own] == [created["name"]]
    assert own[0]["model"] == "test-model" and own[0]["cost_usd"] > 0
    assert own[0]["requests"] == 1 and own[0]["prompt_tokens"] > 0
    report = usage(gateway, ADMIN_KEY, group_by="provider").json()
    assert report["data"][0]["provider"] == "mock"
    assert report["total"]["requests"] >= 2
    target = ["--gateway", gateway.url, "--admin-key", ADMIN_KEY]
    assert main(["usage", "--group-by", "key", *target]) == 0
    table = capsys.readouterr().out
    assert created["name"] in table and "TOTAL" in table


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"group_by": "colour"}, "group_by"),
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "to"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "from"),
    ],
)
def test_usage_refusals(gateway: GatewayServer, params: dict[str, str], param: str) -> None:
    response = usage(gateway, ADMIN_KEY, **params)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_usage_needs_a_key(gateway: GatewayServer) -> None:
    assert usage(gateway, "wrong").status_code == 401


def test_the_sdk_sees_our_rate_limit_headers(
    gateway: GatewayServer, created: dict[str, Any]
) -> None:
    admin(gateway, "PATCH", f"/{created['name']}", json={"rpm": 1})
    client = openai.OpenAI(
        base_url=f"{gateway.url}/v1", api_key=created["key"], max_retries=0, timeout=10
    )
    client.chat.completions.create(model="test-model", messages=HELLO)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="test-model", messages=HELLO)  # type: ignore[arg-type]
    assert refused.value.response.headers["x-ratelimit-limit-requests"] == "1"
