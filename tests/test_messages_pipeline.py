"""`/v1/messages` goes through the request pipeline every endpoint shares: admission
(rate limits, budgets) between planning and dispatch, refused in Anthropic's shape, and
one account of every finished request (an answer, a stream, an error, a token count)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from tests.gateway_server import GatewayServer
from tests.test_endpoint_pipeline import Recorder, records_for

RPM_KEY = "sb-messages-rpm-key-0001"
FREE_KEY = "sb-messages-free-key-002"
SIM = {"provider": "sim", "model": "sim-1", "input_per_mtok": 1, "output_per_mtok": 2}
HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayServer]:
    def key(name: str, secret: str, **limits: int) -> dict[str, object]:
        return {"name": name, "key_sha256": hashlib.sha256(secret.encode()).hexdigest(), **limits}

    config = {
        "store": "memory://",
        "auth": {"keys": [key("rpm", RPM_KEY, rpm=1), key("free", FREE_KEY)]},
        "providers": {"sim": {"kind": "simulated"}},
        "models": {"claude-sim": {"deployments": [SIM]}},
    }
    server = GatewayServer(config).start()
    yield server
    server.stop()


@pytest.fixture
def recorder(gateway: GatewayServer) -> Recorder:
    sink = Recorder()
    gateway.app.state.services.accounts.add_sink(sink)
    return sink


def sdk(gateway: GatewayServer, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0, timeout=10)


def test_messages_are_admitted_against_the_keys_rate_limit(gateway: GatewayServer) -> None:
    with sdk(gateway, RPM_KEY) as client:
        first = client.messages.with_raw_response.create(
            model="claude-sim", max_tokens=10, messages=HELLO
        )
        assert first.headers["x-ratelimit-limit-requests"] == "1"
        with pytest.raises(anthropic.RateLimitError) as refused:
            client.messages.create(model="claude-sim", max_tokens=10, messages=HELLO)
    body = refused.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "rate_limit_error"
    headers = refused.value.response.headers
    assert headers["x-switchboard-error-code"] == "rate_limit_exceeded"
    assert int(headers["retry-after"]) >= 1


def test_an_answer_and_a_stream_each_leave_one_record(
    gateway: GatewayServer, recorder: Recorder
) -> None:
    with sdk(gateway, FREE_KEY) as client:
        message = client.messages.create(model="claude-sim", max_tokens=10, messages=HELLO)
        with client.messages.stream(model="claude-sim", max_tokens=10, messages=HELLO) as stream:
            stream.until_done()
            streamed_id = stream.response.headers["x-request-id"]
    metadata = (message.model_extra or {})["routing_metadata"]
    (record,) = records_for(recorder, metadata["request_id"])
    assert (record.endpoint, record.key, record.model, record.stream, record.status) == (
        "messages",
        "free",
        "claude-sim",
        False,
        200,
    )
    assert record.cost_usd == metadata["cost"]["usd"] > 0
    (streamed,) = records_for(recorder, streamed_id)
    assert (streamed.endpoint, streamed.stream, streamed.status) == ("messages", True, 200)
    assert streamed.usage is not None and streamed.usage.completion_tokens > 0


def test_refusals_and_token_counts_are_recorded(gateway: GatewayServer, recorder: Recorder) -> None:
    auth = {"x-api-key": FREE_KEY}
    refused = httpx.post(
        f"{gateway.url}/v1/messages",
        json={"model": "claude-sim", "messages": HELLO},  # no max_tokens
        headers=auth,
    )
    assert refused.status_code == 400
    (record,) = records_for(recorder, refused.headers["x-request-id"])
    assert (record.endpoint, record.status, record.error_code) == (
        "messages",
        400,
        "missing_field",
    )
    counted = httpx.post(
        f"{gateway.url}/v1/messages/count_tokens",
        json={"model": "claude-sim", "messages": HELLO},
        headers=auth,
    )
    assert counted.status_code == 200 and counted.json()["input_tokens"] > 0
    (record,) = records_for(recorder, counted.headers["x-request-id"])
    assert (record.endpoint, record.status, record.cost_usd) == (
        "messages.count_tokens",
        200,
        0.0,
    )
