"""Spend from every endpoint reaches the ledger and the budgets, as chat's does: a budgeted
key's requests on `/v1/messages`, `/v1/responses` and `/v1/embeddings` (native and
translated, whole answers and streams) through the official `anthropic` and `openai` SDKs
are each charged their `routing_metadata.cost` in the key's budget, in `GET /v1/usage`
and in the request log, and a key whose budget cannot take a request's worst case is
refused in each API's own error shape before any upstream is called."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from gateway.governance.periods import period_id
from tests.gateway_server import GatewayServer, metadata_of
from tests.mock_upstream import JSONReply, MockUpstream, SSEReply
from tests.routing_setup import wait_until
from tests.test_messages_e2e import anthropic_fixture, sse_events

ADMIN_KEY = "sk-admin-ledger-tests"
SPENDER_KEY = "sb-ledger-spender-key-0001"
TINY_KEY = "sb-ledger-tiny-key-000002"
HELLO = [{"role": "user", "content": "Hello"}]


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, MockUpstream]]:
    servers = {name: MockUpstream().start() for name in ("openai", "claude")}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def up(upstreams: dict[str, MockUpstream]) -> dict[str, MockUpstream]:
    for server in upstreams.values():
        server.reset()
    return upstreams


@pytest.fixture(scope="module")
def request_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ledger") / "requests.log"


def logged(path: Path, endpoint: str, key: str) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    return [e for e in entries if e["endpoint"] == endpoint and e["key"] == key]


@pytest.fixture(scope="module")
def gateway(upstreams: dict[str, MockUpstream], request_log: Path) -> Iterator[GatewayServer]:
    def deployment(provider: str, model: str, price_in: float, price_out: float) -> Any:
        return {
            "provider": provider,
            "model": model,
            "input_per_mtok": price_in,
            "output_per_mtok": price_out,
        }

    openai_url = upstreams["openai"].url
    config = {
        "store": "memory://",
        "logging": {"output": str(request_log)},
        "admin": {"key_sha256": digest(ADMIN_KEY)},
        "auth": {
            "keys": [
                {"name": "spender", "key_sha256": digest(SPENDER_KEY), "budget_usd": {"daily": 5}},
                # room for no request's worst case on any endpoint below
                {"name": "tiny", "key_sha256": digest(TINY_KEY), "budget_usd": {"daily": 1e-6}},
            ]
        },
        "providers": {
            "openai": {"kind": "openai", "base_url": openai_url, "api_key": "sk-openai"},
            "openai-responses": {
                "kind": "openai",
                "base_url": openai_url,
                "api_key": "sk-openai",
                "responses_api": True,
            },
            "claude": {
                "kind": "anthropic",
                "base_url": f"http://127.0.0.1:{upstreams['claude'].port}",
                "api_key": "sk-ant-ledger",
            },
        },
        "models": {
            "gpt": {"deployments": [deployment("openai", "gpt-4o-mini", 0.15, 0.6)]},
            "gpt-native": {
                "deployments": [deployment("openai-responses", "gpt-4.1", 2, 8)],
            },
            "claude": {"deployments": [deployment("claude", "claude-sonnet-4-5", 3, 15)]},
            # a dear embedding model, so that its worst case does not fit the tiny budget
            "embed": {"deployments": [deployment("openai", "text-embedding-3-small", 500, 0)]},
        },
    }
    server = GatewayServer(config).start()
    yield server
    server.stop()


def anthropic_sdk(gateway: GatewayServer, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0, timeout=10)


def usage_rows(gateway: GatewayServer, key: str) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{gateway.url}/v1/usage",
        params={"group_by": "key,model"},
        headers={"authorization": f"Bearer {key}"},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()["data"]
    return rows


def test_every_endpoints_spend_reaches_the_budget_the_ledger_and_the_log(
    gateway: GatewayServer, up: dict[str, MockUpstream], request_log: Path
) -> None:
    costs: dict[str, list[float]] = {"gpt": [], "gpt-native": [], "claude": [], "embed": []}

    with anthropic_sdk(gateway, SPENDER_KEY) as claude_sdk:
        up["claude"].enqueue(JSONReply(anthropic_fixture("response_tool_use.json")))
        native = claude_sdk.messages.create(model="claude", max_tokens=300, messages=HELLO)
        costs["claude"].append(metadata_of(native)["cost"]["usd"])
        up["claude"].enqueue(SSEReply(sse_events("stream_text.sse"), send_done=False))
        # the raw events: the SDK's stream helper rebuilds message_stop without extras
        events = claude_sdk.messages.create(
            model="claude", max_tokens=300, messages=HELLO, stream=True
        )
        stops = [e for e in events if e.type == "message_stop"]
        costs["claude"].append(metadata_of(stops[0])["cost"]["usd"])
        translated = claude_sdk.messages.create(model="gpt", max_tokens=300, messages=HELLO)
        costs["gpt"].append(metadata_of(translated)["cost"]["usd"])

    client = gateway.sdk(SPENDER_KEY)
    response = client.responses.create(model="gpt", input="Hello", max_output_tokens=300)
    costs["gpt"].append(metadata_of(response)["cost"]["usd"])
    with client.responses.stream(model="gpt", input="Hello") as events:
        final = events.get_final_response()
    costs["gpt"].append(metadata_of(final)["cost"]["usd"])
    native_response = client.responses.create(model="gpt-native", input="Hello")
    costs["gpt-native"].append(metadata_of(native_response)["cost"]["usd"])
    embedded = client.embeddings.create(model="embed", input=["one", "two"])
    costs["embed"].append(metadata_of(embedded)["cost"]["usd"])
    assert all(cost > 0 for values in costs.values() for cost in values)

    # the budget: held while in flight, then settled at the real cost
    store = gateway.app.state.services.governance.store
    bucket = f"key:spender:d:{period_id('daily', time.time())}"
    total = sum(sum(values) for values in costs.values())
    wait_until(lambda: store._held.get(bucket, 0) == 0, 10)
    assert store._spent[bucket] == pytest.approx(total * 1e9, abs=len(costs) * 4)

    # the ledger, as the key itself reads it: one row per model it used
    def settled() -> bool:
        return sum(row["requests"] for row in usage_rows(gateway, SPENDER_KEY)) == 7

    wait_until(settled, 10)
    rows = {row["model"]: row for row in usage_rows(gateway, SPENDER_KEY)}
    assert set(rows) == set(costs)
    for model, values in costs.items():
        assert rows[model]["key"] == "spender"
        assert rows[model]["requests"] == len(values)
        assert rows[model]["cost_usd"] == pytest.approx(sum(values), abs=1e-9)
        assert rows[model]["prompt_tokens"] > 0
    assert rows["embed"].get("completion_tokens", 0) == 0  # zeros are left out
    assert {row["key"] for row in usage_rows(gateway, ADMIN_KEY)} >= {"spender"}

    # one request log line each, with the same cost, under the endpoint's name
    counts = {"messages": 3, "responses": 3, "embeddings": 1}
    wait_until(
        lambda: all(len(logged(request_log, e, "spender")) == n for e, n in counts.items()), 10
    )
    for endpoint in counts:
        for entry in logged(request_log, endpoint, "spender"):
            assert entry["status"] == 200 and entry["error_code"] is None
            assert entry["cost_usd"] in costs[entry["model"]]
    streams = [e["stream"] for e in logged(request_log, "messages", "spender")]
    assert sorted(streams) == [False, False, True]


def test_a_spent_budget_is_refused_in_each_apis_shape(
    gateway: GatewayServer, up: dict[str, MockUpstream], request_log: Path
) -> None:
    with (
        anthropic_sdk(gateway, TINY_KEY) as claude_sdk,
        pytest.raises(anthropic.RateLimitError) as messages_refused,
    ):
        claude_sdk.messages.create(model="claude", max_tokens=300, messages=HELLO)
    refusal = messages_refused.value
    assert isinstance(refusal.body, dict)
    assert refusal.body["type"] == "error"
    assert refusal.body["error"]["type"] == "rate_limit_error"
    assert "budget" in refusal.body["error"]["message"]
    assert refusal.response.headers["x-switchboard-error-code"] == "budget_exceeded"
    assert int(refusal.response.headers["retry-after"]) > 0

    client = gateway.sdk(TINY_KEY)
    with pytest.raises(openai.RateLimitError) as responses_refused:
        client.responses.create(model="gpt", input="Hello", max_output_tokens=300)
    assert responses_refused.value.code == "budget_exceeded"
    with pytest.raises(openai.RateLimitError) as stream_refused:
        client.responses.create(model="gpt-native", input="Hello", stream=True)
    assert stream_refused.value.code == "budget_exceeded"
    with pytest.raises(openai.RateLimitError) as embeddings_refused:
        client.embeddings.create(model="embed", input=["one", "two"])
    assert embeddings_refused.value.code == "budget_exceeded"
    assert up["openai"].requests == [] and up["claude"].requests == []
    counts = {"messages": 1, "responses": 2, "embeddings": 1}
    wait_until(lambda: all(len(logged(request_log, e, "tiny")) == n for e, n in counts.items()), 10)
    for endpoint in counts:
        for entry in logged(request_log, endpoint, "tiny"):
            assert (entry["status"], entry["error_code"]) == (429, "budget_exceeded")
