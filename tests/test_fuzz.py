"""Generated bad input for `/v1/chat/completions` and the admin API: never a 5xx, never a
traceback in a body or the log, always the OpenAI error envelope for a 4xx.

`make test` sends a few hundred of each; `SWITCHBOARD_FUZZ_EXAMPLES=10000 pytest -m fuzz`
(`make fuzz`) the long run."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gateway_server import GatewayServer

EXAMPLES = int(os.environ.get("SWITCHBOARD_FUZZ_EXAMPLES", "250"))
ADMIN = "sk-fuzz-admin"
KEY = "sb-fuzz-client-key-000001"
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=EXAMPLES <= 250,  # the bounded run is the same every time
    suppress_health_check=list(HealthCheck),
    database=None,
)

names = st.text(max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(
        [
            "",
            "user",
            "assistant",
            "tool",
            "function",
            "text",
            "image_url",
            "auto",
            "none",
            "required",
            "json_schema",
            "json_object",
        ]
    )
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4),
    max_leaves=25,
)
CHAT_FIELDS = [
    "model",
    "messages",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "n",
    "stop",
    "max_tokens",
    "max_completion_tokens",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "seed",
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "reasoning_effort",
    "extensions",
    "functions",
    "function_call",
    "models",
    "gateway",
    "routing",
    "provider",
    "metadata",
]
MESSAGE_FIELDS = [
    "role",
    "content",
    "name",
    "tool_calls",
    "tool_call_id",
    "function_call",
    "refusal",
    "reasoning_content",
]


def valid_body() -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


@st.composite
def chat_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["field", "message", "whole", "bytes", "deep", "many"]))
    body: Any = valid_body()
    if kind == "field":
        for _ in range(draw(st.integers(1, 3))):
            body[draw(st.sampled_from(CHAT_FIELDS))] = draw(json_values)
    elif kind == "message":
        message = dict(body["messages"][0])
        message[draw(st.sampled_from(MESSAGE_FIELDS))] = draw(json_values)
        body["messages"] = [message, *draw(st.lists(json_values, max_size=2))]
    elif kind == "whole":
        body = draw(json_values)
    elif kind == "bytes":
        return draw(st.binary(max_size=300))
    elif kind == "deep":
        depth = draw(st.integers(30, 3000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        return (
            json.dumps(valid_body())[:-1].encode()
            + (
                f', "{draw(st.sampled_from(CHAT_FIELDS))}": '
                + opener * depth
                + "1"
                + closer * depth
                + "}"
            ).encode()
        )
    else:
        body["messages"] = [{"role": "user", "content": "x"}] * draw(st.integers(0, 3000))
    return json.dumps(body, allow_nan=True).encode()


content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "",
        "application/x-www-form-urlencoded",
    ]
)


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayServer]:
    config = {
        "auth": {
            "teams": [{"name": "t", "rpm": 100000, "budget_usd": {"daily": 1000}}],
            "keys": [
                {
                    "name": "client",
                    "team": "t",
                    "tpm": 10_000_000,
                    "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
                }
            ],
        },
        "admin": {"key_sha256": hashlib.sha256(ADMIN.encode()).hexdigest()},
        "providers": {"sim": {"kind": "simulated", "completion_tokens": 3}},
        "models": {
            "m": {
                "deployments": [
                    {"provider": "sim", "model": "s", "input_per_mtok": 1, "output_per_mtok": 2}
                ]
            }
        },
        "limits": {"max_messages": 1000},
    }
    server = GatewayServer(config).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(gateway: GatewayServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        yield http


@pytest.fixture(autouse=True)
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.WARNING):
        yield
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [r.getMessage() for r in bad]
    assert "Traceback" not in caplog.text


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    assert "Traceback" not in response.text and 'File "' not in response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "code", "param"}
        assert isinstance(error["message"], str) and error["message"]


@pytest.mark.fuzz
@FUZZ
@given(body=chat_bodies(), content_type=content_types, stream=st.booleans())
def test_chat_completions(
    client: httpx.Client, body: bytes, content_type: str, stream: bool
) -> None:
    headers = {"authorization": f"Bearer {KEY}"}
    if content_type:
        headers["content-type"] = content_type
    if stream and body.startswith(b"{"):
        body = body[:-1] + b', "stream": true}' if body.endswith(b"}") else body
    response = client.post("/v1/chat/completions", content=body, headers=headers)
    check(response)


admin_bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    st.dictionaries(
        st.sampled_from(
            [
                "name",
                "team",
                "rpm",
                "tpm",
                "budget_usd",
                "allowed_models",
                "expires_at",
                "metadata",
                "disabled",
                "key",
            ]
        ),
        json_values,
        max_size=5,
    ).map(lambda d: json.dumps(d, allow_nan=True).encode()),
    st.binary(max_size=100),
)


@pytest.mark.fuzz
@FUZZ
@given(
    method=st.sampled_from(["POST", "PATCH", "DELETE", "GET"]),
    name=st.text(max_size=20),
    body=admin_bodies,
    key=st.sampled_from([ADMIN, KEY, "", "sk-wrong"]),
)
def test_admin_keys(client: httpx.Client, method: str, name: str, body: bytes, key: str) -> None:
    path = (
        "/v1/admin/keys" if method in ("POST", "GET") else f"/v1/admin/keys/{quote(name, safe='')}"
    )
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    response = client.request(
        method, path, content=body if method != "GET" else None, headers=headers
    )
    check(response)


@pytest.mark.fuzz
@FUZZ
@given(
    params=st.dictionaries(st.sampled_from(["from", "to", "group_by", "x"]), st.text(max_size=15))
)
def test_usage(client: httpx.Client, params: dict[str, str]) -> None:
    check(client.get("/v1/usage", params=params, headers={"authorization": f"Bearer {KEY}"}))
