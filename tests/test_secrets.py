"""Secrets never leak: with known provider, gateway and admin keys, every error class is
run through a real `switchboard serve` process (logging at debug), then everything the
run wrote is searched: answer bodies and headers, the process's log, `/metrics`, the
store's contents, and what reached the upstream."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.gateway_process import GatewayProcess
from tests.mock_upstream import ErrorReply, MockUpstream, SSEReply, chunk
from tests.redis_server import RedisServer
from tests.routing_setup import HELLO, wait_until

PROVIDER_KEY = "sk-provider-SECRET-4f1d9a2b7c"
CLIENT_KEY = "sb-client-SECRET-77aa01bb"
LIMITED_KEY = "sb-limited-SECRET-88cc02dd"
ADMIN_KEY = "sk-admin-SECRET-0b3c5e"
WRONG_KEY = "sb-wrong-SECRET-ffff0000"
SECRETS = [PROVIDER_KEY, CLIENT_KEY, LIMITED_KEY, ADMIN_KEY, WRONG_KEY]


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Run:
    """Everything the gateway said to clients, for the search afterwards."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self.gateway = gateway
        self.said: list[str] = []
        self.created_keys: list[str] = []

    def send(
        self, method: str, path: str, key: str | None = CLIENT_KEY, **kwargs: Any
    ) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if key is not None:
            headers["authorization"] = f"Bearer {key}"
        if "content" in kwargs:
            headers.setdefault("content-type", "application/json")
        with httpx.stream(
            method, f"{self.gateway.url}{path}", headers=headers, timeout=15, **kwargs
        ) as response:
            response.read()
        self.said.append(json.dumps(dict(response.headers)) + "\n" + response.text)
        return response

    def chat(self, key: str | None = CLIENT_KEY, **body: Any) -> httpx.Response:
        return self.send(
            "POST", "/v1/chat/completions", key, json={"model": "m", "messages": HELLO, **body}
        )


@pytest.fixture(scope="module")
def setup(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Run, MockUpstream, RedisServer, Path]]:
    folder = tmp_path_factory.mktemp("secrets")
    upstream = MockUpstream().start()
    with RedisServer() as server:
        config = {
            "store": server.url,
            "auth": {
                "keys": [
                    {"name": "client", "key_sha256": digest(CLIENT_KEY), "allowed_models": ["m"]},
                    {
                        "name": "limited",
                        "key_sha256": digest(LIMITED_KEY),
                        "rpm": 1,
                        "budget_usd": {"daily": 0.0000001},
                    },
                ]
            },
            "admin": {"key_sha256": digest(ADMIN_KEY)},
            "providers": {
                "up": {"kind": "openai", "base_url": upstream.url, "api_key": PROVIDER_KEY}
            },
            "models": {
                "m": {
                    "deployments": [
                        {"provider": "up", "model": "u", "input_per_mtok": 1, "output_per_mtok": 1}
                    ]
                },
                "other": {
                    "deployments": [
                        {"provider": "up", "model": "u", "input_per_mtok": 1, "output_per_mtok": 1}
                    ]
                },
            },
            # every failure below reaches the upstream: no cooldown or open circuit between
            "routing": {
                "retries": {"attempts": 1},
                "circuit": {
                    "consecutive_failures": 1000,
                    "error_rate": 1.0,
                    "cooldown": 0.001,
                    "auth_cooldown": 0.001,
                    "rate_limit_cooldown": 0.001,
                },
            },
            "limits": {"max_request_bytes": 4096},
        }
        gateway = GatewayProcess(config, folder, "gateway", "--log-level", "debug").start()
        try:
            yield Run(gateway), upstream, server, folder
        finally:
            gateway.stop()
            upstream.stop()


def test_no_secret_anywhere(setup: tuple[Run, MockUpstream, RedisServer, Path]) -> None:
    run, upstream, server, folder = setup
    echo = f"Incorrect API key provided: {PROVIDER_KEY}"
    # --- the client's mistakes
    assert run.chat(key=None).status_code == 401
    assert run.chat(key=WRONG_KEY).status_code == 401
    assert (
        run.send(
            "POST", "/v1/chat/completions", headers={"x-api-key": WRONG_KEY}, key=None, json={}
        ).status_code
        == 401
    )
    assert run.chat(model="other").status_code == 403
    assert run.chat(model="nope").status_code == 404
    assert run.send("POST", "/v1/chat/completions", content=b"{oops").status_code == 400
    assert (
        run.send(
            "POST",
            "/v1/chat/completions",
            content=b"x" * 5000,
            headers={"content-type": "application/json"},
        ).status_code
        == 413
    )
    assert (
        run.send(
            "POST", "/v1/chat/completions", content=b"{}", headers={"content-type": "text/plain"}
        ).status_code
        == 415
    )
    assert run.chat(temperature=9).status_code == 400
    # --- limits
    assert run.chat(key=LIMITED_KEY).status_code == 429  # budget
    assert run.chat(key=LIMITED_KEY).status_code == 429  # rate or budget
    # --- idempotency
    headers = {"idempotency-key": "k1"}
    assert (
        run.send(
            "POST",
            "/v1/chat/completions",
            json={"model": "m", "messages": HELLO},
            headers=dict(headers),
        ).status_code
        == 200
    )
    assert (
        run.send(
            "POST",
            "/v1/chat/completions",
            json={"model": "m", "messages": HELLO, "seed": 1},
            headers=dict(headers),
        ).status_code
        == 409
    )
    # --- upstream failures that echo the provider's key
    for status in (401, 403, 429, 400, 500, 503):
        upstream.enqueue(
            ErrorReply(
                status,
                echo,
                type="invalid_request_error",
                code=PROVIDER_KEY,
                headers={"retry-after": "0"},
            )
        )
        assert run.chat().status_code >= 400
    upstream.enqueue(SSEReply([chunk("a", role="assistant"), f"data: {echo}\n\n"]))
    run.chat(stream=True)
    upstream.enqueue(SSEReply([chunk("a", role="assistant"), chunk("b")], cut_after=1))
    run.chat(stream=True)
    assert run.chat().status_code == 200
    # --- the admin API
    assert run.send("GET", "/v1/admin/keys", key=WRONG_KEY).status_code == 401
    created = run.send("POST", "/v1/admin/keys", key=ADMIN_KEY, json={"name": "minted"})
    assert created.status_code == 201
    minted = created.json()["key"]
    run.said.pop()  # the one answer allowed to hold a key: its creation
    assert (
        run.send(
            "POST", "/v1/chat/completions", key=minted, json={"model": "m", "messages": HELLO}
        ).status_code
        == 200
    )
    assert run.send("GET", "/v1/admin/keys", key=ADMIN_KEY).status_code == 200
    assert (
        run.send("POST", "/v1/admin/keys", key=ADMIN_KEY, json={"name": "minted"}).status_code
        == 409
    )
    assert run.send("DELETE", "/v1/admin/keys/minted", key=ADMIN_KEY).status_code == 200
    assert (
        run.send(
            "POST", "/v1/chat/completions", key=minted, json={"model": "m", "messages": HELLO}
        ).status_code
        == 401
    )
    assert (
        run.send("GET", "/v1/usage", key=ADMIN_KEY, params={"group_by": "key"}).status_code == 200
    )
    assert run.send("GET", "/v1/usage", key=CLIENT_KEY).status_code == 200
    run.send("GET", "/metrics", key=None)
    run.send("GET", "/v1/providers")
    run.send("GET", "/readyz", key=None)
    # --- what the run left behind
    wait_until(lambda: _stored(server) != "", 5)
    places = {
        "answers": "\n".join(run.said),
        "log": run.gateway.log.read_text(),
        "store": _stored(server),
        "config folder (but the config)": "\n".join(
            p.read_text(errors="replace") for p in folder.iterdir() if p.suffix != ".yaml"
        ),
    }
    for place, text in places.items():
        for secret in [*SECRETS, minted]:
            assert secret not in text, f"{secret[:12]}… found in {place}"
    # the upstream got our provider key, and never a client's key
    for request in upstream.requests:
        seen = json.dumps(dict(request.headers)) + request.body.decode(errors="replace")
        for secret in (CLIENT_KEY, LIMITED_KEY, ADMIN_KEY, WRONG_KEY, minted):
            assert secret not in seen


def _stored(server: RedisServer) -> str:
    lines = []
    with server.client() as client:
        for key in client.scan_iter(count=500):
            kind = client.type(key).decode()
            if kind == "string":
                value: Any = client.get(key)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            else:
                value = client.smembers(key)
            lines.append(f"{key!r} {value!r}")
    return "\n".join(lines)
