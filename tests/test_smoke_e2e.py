from __future__ import annotations

import openai

from tests.gateway_server import upstream_config


def test_plain_completion_through_gateway(mock_upstream, gateway_factory) -> None:
    gateway = gateway_factory(upstream_config(mock_upstream.url))
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused")
    response = client.chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": "hi there"}]
    )
    assert response.choices[0].message.content == "Hello from mock upstream"
    metadata = response.model_extra["routing_metadata"]
    assert metadata["provider"] == "mock"
    assert mock_upstream.requests[0].json["model"] == "upstream-model-id"
