"""Rate limits and budgets as a client sees them, through the official `openai` SDK:
429s with `Retry-After` and OpenAI's `x-ratelimit-*` headers, reservations settled to
the real cost."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import openai
import pytest

from gateway.governance.periods import period_id
from tests.gateway_server import GatewayServer, upstream_config
from tests.mock_upstream import MockUpstream
from tests.routing_setup import HELLO, wait_until

RPM_KEY = "sb-rpm-key-000000000001"
TEAM_KEY = "sb-team-key-00000000002"
BUDGET_KEY = "sb-budget-key-000000003"
FREE_KEY = "sb-free-key-00000000004"


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture(scope="module")
def gateway(shared_upstream: MockUpstream) -> Iterator[GatewayServer]:
    config = upstream_config(shared_upstream.url)
    config["auth"] = {
        "teams": [{"name": "small", "tpm": 500}],
        "keys": [
            {"name": "rpm", "key_sha256": digest(RPM_KEY), "rpm": 2},
            {"name": "team", "key_sha256": digest(TEAM_KEY), "team": "small", "rpm": 100},
            {"name": "budget", "key_sha256": digest(BUDGET_KEY), "budget_usd": {"daily": 0.001}},
            {"name": "free", "key_sha256": digest(FREE_KEY)},
        ],
    }
    server = GatewayServer(config).start()
    yield server
    server.stop()


def ask(client: openai.OpenAI, **extra: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model="test-model", messages=HELLO, **extra
    )


def test_requests_per_minute(gateway: GatewayServer, upstream: MockUpstream) -> None:
    client = gateway.sdk(RPM_KEY)
    first = ask(client)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-reset-requests"] == "30s"
    assert ask(client).headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(openai.RateLimitError) as refused:
        ask(client)
    error = refused.value
    assert error.code == "rate_limit_exceeded"
    assert error.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert error.response.headers["x-ratelimit-limit-requests"] == "2"
    assert 1 <= int(error.response.headers["retry-after"]) <= 30
    assert len(upstream.requests) == 2


def test_a_key_without_limits_gets_no_headers(gateway: GatewayServer) -> None:
    answer = ask(gateway.sdk(FREE_KEY))
    assert not [h for h in answer.headers if h.startswith("x-ratelimit")]


def test_team_tokens_per_minute(gateway: GatewayServer, upstream: MockUpstream) -> None:
    client = gateway.sdk(TEAM_KEY)
    answer = ask(client, max_tokens=200)
    assert answer.headers["x-ratelimit-limit-tokens"] == "500"
    assert int(answer.headers["x-ratelimit-remaining-tokens"]) < 300
    assert answer.headers["x-ratelimit-limit-requests"] == "100"
    # the mock used 14 tokens, not 200: once settled, they are back (the estimate was more)
    services = gateway.app.state.services
    wait_until(
        lambda: services.governance.store._tats["team:small:tpm"] < _ms() + 60_000 * 20 / 500, 5
    )
    with pytest.raises(openai.RateLimitError) as refused:
        ask(client, max_tokens=600)  # more than the whole minute
    assert "tokens per minute" in refused.value.message
    assert ask(client, max_tokens=300).headers["x-ratelimit-limit-tokens"] == "500"


def _ms() -> int:
    return int(time.time() * 1000)


def test_budget_refuses_a_worst_case_that_does_not_fit(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    client = gateway.sdk(BUDGET_KEY)
    with pytest.raises(openai.RateLimitError) as refused:
        ask(client, max_tokens=200)  # 200 x $8/M = $0.0016 > $0.001
    error = refused.value
    assert error.code == "budget_exceeded"
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    expected = math.ceil((midnight - now).total_seconds())
    assert abs(int(error.response.headers["retry-after"]) - expected) <= 5
    assert upstream.requests == []


def test_budget_is_charged_the_real_cost(gateway: GatewayServer, upstream: MockUpstream) -> None:
    services = gateway.app.state.services
    bucket = f"key:budget:d:{period_id('daily', time.time())}"
    answer = ask(gateway.sdk(BUDGET_KEY), max_tokens=100).parse()
    cost = answer.model_extra["routing_metadata"]["cost"]["usd"]

    def settled() -> bool:
        spent, held = (
            services.governance.store._spent.get(bucket, 0),
            services.governance.store._held.get(bucket, 0),
        )
        return held == 0 and spent > 0

    wait_until(settled, 5)
    assert services.governance.store._spent[bucket] == pytest.approx(cost * 1e9, abs=2)


def test_an_error_before_admission_still_carries_the_headers(gateway: GatewayServer) -> None:
    response = gateway.post(b"{not json", headers={"authorization": f"Bearer {TEAM_KEY}"})
    assert response.status_code == 400
    assert response.headers["x-ratelimit-limit-requests"] == "100"
    assert response.headers["x-ratelimit-limit-tokens"] == "500"
    assert "x-ratelimit-remaining-tokens" in response.headers
