"""Every endpoint goes through the same request pipeline as chat: admission (rate limits,
budgets) between planning and dispatch, and one account of every finished request, with
the endpoint's name, delivered to the sinks."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import openai
import pytest

from gateway.accounting.record import RequestRecord
from tests.gateway_server import GatewayServer, upstream_config
from tests.mock_upstream import MockUpstream
from tests.routing_setup import wait_until

RPM_KEY = "sb-rpm-key-000000000001"
FREE_KEY = "sb-free-key-00000000004"


class Recorder:
    name = "test-recorder"

    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    async def deliver(self, records: Sequence[RequestRecord]) -> None:
        self.records.extend(records)


@pytest.fixture(scope="module")
def gateway(shared_upstream: MockUpstream) -> Iterator[GatewayServer]:
    config = upstream_config(shared_upstream.url)
    config["auth"] = {
        "keys": [
            {"name": "rpm", "key_sha256": hashlib.sha256(RPM_KEY.encode()).hexdigest(), "rpm": 1},
            {"name": "free", "key_sha256": hashlib.sha256(FREE_KEY.encode()).hexdigest()},
        ]
    }
    server = GatewayServer(config).start()
    yield server
    server.stop()


@pytest.fixture
def recorder(gateway: GatewayServer) -> Recorder:
    sink = Recorder()
    gateway.app.state.services.accounts.add_sink(sink)
    return sink


def records_for(recorder: Recorder, request_id: str) -> list[RequestRecord]:
    wait_until(lambda: any(r.request_id == request_id for r in recorder.records), 5)
    return [r for r in recorder.records if r.request_id == request_id]


def embed(client: openai.OpenAI, **extra: Any) -> Any:
    return client.embeddings.with_raw_response.create(model="test-model", input="hi", **extra)


def test_embeddings_are_admitted_against_the_keys_rate_limit(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    client = gateway.sdk(RPM_KEY)
    first = embed(client)
    assert first.headers["x-ratelimit-limit-requests"] == "1"
    with pytest.raises(openai.RateLimitError) as refused:
        embed(client)
    assert refused.value.code == "rate_limit_exceeded"
    assert len(upstream.requests) == 1


def test_an_embeddings_request_leaves_one_record(
    gateway: GatewayServer, upstream: MockUpstream, recorder: Recorder
) -> None:
    answer = embed(gateway.sdk(FREE_KEY))
    metadata = answer.parse().model_extra["routing_metadata"]
    (record,) = records_for(recorder, metadata["request_id"])
    assert (record.endpoint, record.key, record.model, record.status) == (
        "embeddings",
        "free",
        "test-model",
        200,
    )
    assert record.usage is not None and record.usage.prompt_tokens == 5
    assert record.cost_usd == metadata["cost"]["usd"]
    assert record.routing_metadata is not None
    assert record.routing_metadata.provider == "mock"


def test_a_refused_embeddings_request_is_recorded_with_its_error(
    gateway: GatewayServer, recorder: Recorder
) -> None:
    reply = httpx.post(
        f"{gateway.url}/v1/embeddings",
        json={"model": "test-model", "input": []},
        headers={"authorization": f"Bearer {FREE_KEY}"},
    )
    assert reply.status_code == 400
    (record,) = records_for(recorder, reply.headers["x-request-id"])
    assert (record.endpoint, record.status, record.error_code) == (
        "embeddings",
        400,
        "invalid_value",
    )


@pytest.mark.parametrize("stream", [False, True])
def test_a_legacy_completion_leaves_one_record(
    gateway: GatewayServer, upstream: MockUpstream, recorder: Recorder, stream: bool
) -> None:
    client = gateway.sdk(FREE_KEY)
    if stream:
        chunks = list(client.completions.create(model="test-model", prompt="hi", stream=True))
        metadata = chunks[-1].model_extra["routing_metadata"]
    else:
        answer = client.completions.create(model="test-model", prompt="hi")
        metadata = answer.model_extra["routing_metadata"]
    (record,) = records_for(recorder, metadata["request_id"])
    assert (record.endpoint, record.stream, record.status) == ("completions", stream, 200)
    assert record.cost_usd == metadata["cost"]["usd"] > 0
