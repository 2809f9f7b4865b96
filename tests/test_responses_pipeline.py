"""`/v1/responses` goes through the request pipeline every endpoint shares: admission
(rate limits, budgets) between planning and dispatch, key checks, input limits, and one
account of every finished request (answered, refused, streamed, or left by the client)
delivered to the sinks with the endpoint's name."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

import httpx
import openai
import pytest

from gateway.accounting.record import RequestRecord
from tests.gateway_server import GatewayServer, metadata_of, upstream_config
from tests.mock_upstream import MockUpstream, SSEReply
from tests.routing_setup import wait_until

RPM_KEY = "sb-resp-rpm-key-00000001"
FREE_KEY = "sb-resp-free-key-0000002"
LIMITED_KEY = "sb-resp-limited-key-0003"


class Recorder:
    name = "test-recorder"

    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    async def deliver(self, records: Sequence[RequestRecord]) -> None:
        self.records.extend(records)


def key(name: str, plain: str, **limits: object) -> dict[str, object]:
    return {"name": name, "key_sha256": hashlib.sha256(plain.encode()).hexdigest(), **limits}


@pytest.fixture(scope="module")
def gateway(shared_upstream: MockUpstream) -> Iterator[GatewayServer]:
    config = upstream_config(shared_upstream.url)
    config["models"]["other-model"] = config["models"]["test-model"]
    config["auth"] = {
        "keys": [
            key("rpm", RPM_KEY, rpm=1),
            key("free", FREE_KEY),
            key("limited", LIMITED_KEY, allowed_models=["other-*"]),
        ]
    }
    config["limits"] = {"max_messages": 3}
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


def post(gateway: GatewayServer, body: dict[str, object], key: str = FREE_KEY) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/responses",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def test_responses_are_admitted_against_the_keys_rate_limit(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    client = gateway.sdk(RPM_KEY)
    first = client.responses.with_raw_response.create(model="test-model", input="hi")
    assert first.headers["x-ratelimit-limit-requests"] == "1"
    with pytest.raises(openai.RateLimitError) as refused:
        client.responses.create(model="test-model", input="again")
    assert refused.value.code == "rate_limit_exceeded"
    assert refused.value.response.headers["retry-after"]
    assert len(upstream.requests) == 1


def test_a_response_leaves_one_record(
    gateway: GatewayServer, upstream: MockUpstream, recorder: Recorder
) -> None:
    response = gateway.sdk(FREE_KEY).responses.create(model="test-model", input="hi there")
    metadata = metadata_of(response)
    (record,) = records_for(recorder, metadata["request_id"])
    assert (record.endpoint, record.key, record.model, record.status, record.stream) == (
        "responses",
        "free",
        "test-model",
        200,
        False,
    )
    assert record.usage is not None and record.usage.completion_tokens == 4
    assert record.cost_usd == metadata["cost"]["usd"]
    assert record.routing_metadata is not None and record.routing_metadata.provider == "mock"


def test_a_stream_leaves_one_record_as_it_ends(
    gateway: GatewayServer, upstream: MockUpstream, recorder: Recorder
) -> None:
    events = list(
        gateway.sdk(FREE_KEY).responses.create(model="test-model", input="hi", stream=True)
    )
    metadata = metadata_of(events[-1].response)
    (record,) = records_for(recorder, metadata["request_id"])
    assert (record.endpoint, record.stream, record.status) == ("responses", True, 200)
    assert record.cost_usd == metadata["cost"]["usd"]


def test_a_stream_failing_midway_is_recorded_with_its_error(
    gateway: GatewayServer, upstream: MockUpstream, recorder: Recorder
) -> None:
    upstream.enqueue(SSEReply(cut_after=3))
    reply = post(gateway, {"model": "test-model", "input": "hi", "stream": True})
    assert reply.status_code == 200
    (record,) = records_for(recorder, reply.headers["x-request-id"])
    assert (record.endpoint, record.status, record.error_code) == (
        "responses",
        502,
        "upstream_stream_cut",
    )


@pytest.mark.parametrize(
    ("body", "key", "status", "code"),
    [
        ({"model": "test-model"}, FREE_KEY, 400, "missing_field"),
        ({"model": "test-model", "input": "hi"}, LIMITED_KEY, 403, "model_not_allowed"),
        (
            {"model": "test-model", "input": [{"role": "user", "content": "x"}] * 4},
            FREE_KEY,
            400,
            "too_many_messages",
        ),
        ({"model": "test-model", "input": "hi"}, "sb-unknown", 401, "invalid_api_key"),
    ],
)
def test_a_refused_request_is_recorded_with_its_error(
    gateway: GatewayServer,
    upstream: MockUpstream,
    recorder: Recorder,
    body: dict[str, object],
    key: str,
    status: int,
    code: str,
) -> None:
    reply = post(gateway, body, key)
    assert reply.status_code == status, reply.text
    assert reply.json()["error"]["code"] == code
    (record,) = records_for(recorder, reply.headers["x-request-id"])
    assert (record.endpoint, record.status, record.error_code) == ("responses", status, code)
    assert upstream.requests == []


def test_a_body_that_is_not_json_is_refused_by_its_content_type(gateway: GatewayServer) -> None:
    reply = httpx.post(
        f"{gateway.url}/v1/responses",
        content=b'{"model": "test-model", "input": "hi"}',
        headers={"authorization": f"Bearer {FREE_KEY}", "content-type": "text/plain"},
    )
    assert reply.status_code == 415
    assert reply.json()["error"]["code"] == "unsupported_media_type"


def test_metrics_count_responses_under_their_endpoint(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    gateway.sdk(FREE_KEY).responses.create(model="test-model", input="hi")
    upstream.enqueue(SSEReply(cut_after=3))
    post(gateway, {"model": "test-model", "input": "hi", "stream": True})
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    served = (
        'switchboard_requests_total{endpoint="responses",key="free",model="test-model",'
        'outcome="success",provider="mock",team=""}'
    )
    assert served in text
    assert 'switchboard_errors_total{code="upstream_stream_cut",endpoint="responses"' in text
