"""Live prices through the admin endpoint (and `switchboard prices --gateway`): guarded
by the admin key, validated, and seen by the cost strategy at once."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.cli import main
from tests.gateway_server import GatewayServer, metadata_of
from tests.mock_upstream import MockUpstream
from tests.routing_setup import HELLO, routed_config

ADMIN_KEY = "sk-admin-for-tests"
StartGateway = Callable[[dict[str, Any]], GatewayServer]


@pytest.fixture
def priced(
    gateway_factory: StartGateway, mock_upstream_factory: Callable[[], MockUpstream]
) -> GatewayServer:
    upstreams = {"cheap": mock_upstream_factory(), "dear": mock_upstream_factory()}
    config = routed_config(
        {"m": [("cheap", 0.5), ("dear", 2.0)]}, {n: u.url for n, u in upstreams.items()}
    )
    config["admin"] = {"key_sha256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}
    return gateway_factory(config)


def admin(
    gateway: GatewayServer, method: str, key: str = ADMIN_KEY, **kwargs: Any
) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.request(
        method, f"{gateway.url}/v1/admin/prices", headers=headers, timeout=5, **kwargs
    )


def chosen(gateway: GatewayServer) -> str:
    answer = gateway.sdk().chat.completions.create(model="m", messages=HELLO)
    return str(metadata_of(answer)["provider"])


def test_a_price_set_live_changes_the_cost_order_and_the_bill(priced: GatewayServer) -> None:
    assert chosen(priced) == "cheap"
    change = {"model": "m", "provider": "dear", "input_per_mtok": 0.1, "output_per_mtok": 0.2}
    response = admin(priced, "PUT", json=change)
    assert response.status_code == 200, response.text
    answer = priced.sdk().chat.completions.create(model="m", messages=HELLO)
    metadata = metadata_of(answer)
    assert metadata["provider"] == "dear"
    usage = answer.usage
    assert usage is not None
    expected = (usage.prompt_tokens * 0.1 + usage.completion_tokens * 0.2) / 1e6
    assert metadata["cost"]["usd"] == pytest.approx(expected)  # billed at the live price
    listed = admin(priced, "GET").json()["data"]
    assert listed == [{**change, "cached_input_per_mtok": None}]

    cleared = admin(priced, "DELETE", params={"model": "m", "provider": "dear"})
    assert cleared.json() == {"model": "m", "provider": "dear", "cleared": True}
    assert chosen(priced) == "cheap"
    assert admin(priced, "GET").json()["data"] == []


@pytest.mark.parametrize(
    ("key", "status", "code"),
    [("", 401, "invalid_api_key"), ("sk-wrong", 401, "invalid_api_key")],
    ids=["missing", "wrong"],
)
def test_admin_needs_the_admin_key(priced: GatewayServer, key: str, status: int, code: str) -> None:
    response = admin(priced, "GET", key=key)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_admin_is_off_without_an_admin_key_in_the_config(
    gateway_factory: StartGateway, mock_upstream: MockUpstream
) -> None:
    gateway = gateway_factory(routed_config({"m": [("one", 1.0)]}, {"one": mock_upstream.url}))
    response = admin(gateway, "GET")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "admin_disabled"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (
            {"model": "m", "provider": "dear", "input_per_mtok": -1, "output_per_mtok": 1},
            400,
            "invalid_value",
        ),
        ({"model": "m", "provider": "dear", "input_per_mtok": 1}, 400, "invalid_value"),
        (
            {"model": "m", "provider": "dear", "input_per_mtok": 1, "output_per_mtok": 1, "x": 1},
            400,
            "invalid_value",
        ),
        (
            {"model": "nope", "provider": "dear", "input_per_mtok": 1, "output_per_mtok": 1},
            404,
            "deployment_not_found",
        ),
        (
            {"model": "m", "provider": "nope", "input_per_mtok": 1, "output_per_mtok": 1},
            404,
            "deployment_not_found",
        ),
    ],
    ids=[
        "not-json",
        "negative",
        "missing-output",
        "unknown-field",
        "unknown-model",
        "unknown-provider",
    ],
)
def test_a_bad_price_change_is_refused(
    priced: GatewayServer, body: Any, status: int, code: str
) -> None:
    if isinstance(body, bytes):
        response = admin(priced, "PUT", content=body)
    else:
        response = admin(priced, "PUT", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code
    assert admin(priced, "GET").json()["data"] == []  # nothing changed


def test_the_prices_command_talks_to_a_running_gateway(
    priced: GatewayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    target = ["--gateway", priced.url, "--admin-key", ADMIN_KEY]
    assert main(["prices", "set", "m", "dear", "--input", "0.1", "--output", "0.2", *target]) == 0
    assert chosen(priced) == "dear"
    assert main(["prices", "list", *target]) == 0
    assert "dear" in capsys.readouterr().out
    assert main(["prices", "clear", "m", "dear", *target]) == 0
    assert chosen(priced) == "cheap"
    assert main(["prices", "set", "m", "nope", "--input", "1", "--output", "1", *target]) == 1
    assert "no deployment on provider 'nope'" in capsys.readouterr().err
    wrong = ["--gateway", priced.url, "--admin-key", "sk-wrong"]
    assert main(["prices", "list", *wrong]) == 1
    assert "401" in capsys.readouterr().err


def test_the_prices_command_refuses_a_memory_store_config(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("auth: none\nstore: memory://\n")
    assert main(["prices", "list", "--config", str(config)]) == 1
    assert "use --gateway" in capsys.readouterr().err
