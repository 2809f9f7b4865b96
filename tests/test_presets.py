"""OpenAI-compatible vendors as presets of the one OpenAI adapter.

Each preset's base URL, and the exact body each one receives through a real gateway in
front of a mock upstream: the output-limit field renamed, refused parameters dropped
(and named in `x-switchboard-dropped-params`, which is what `unsupported_params` said),
`stream_options.include_usage` asked for or not. Config overrides win over presets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.chat_decoding import decode_chat_body
from gateway.config import ConfigError, parse_config
from providers.base import ProviderCall
from providers.capabilities import Capabilities
from providers.openai.adapter import OpenAIProvider
from providers.openai.config import OpenAIConfig
from providers.openai.presets import PRESETS
from providers.registry import build_provider
from tests.gateway_server import GatewayServer
from tests.mock_upstream import MockUpstream, SSEReply

# written out here rather than read from PRESETS, so a typo there fails a test
BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "together": "https://api.together.xyz/v1",
    "deepseek": "https://api.deepseek.com",
    "mistral": "https://api.mistral.ai/v1",
    "fireworks": "https://api.fireworks.ai/inference/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "xai": "https://api.x.ai/v1",
    "perplexity": "https://api.perplexity.ai",
    "vllm": "http://localhost:8000/v1",
    "ollama": "http://localhost:11434/v1",
}
MESSAGES = [{"role": "user", "content": "Name three rivers."}]
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}

# every optional field a preset might rename or refuse
KITCHEN_SINK: dict[str, Any] = {
    "messages": MESSAGES,
    "max_tokens": 50,
    "temperature": 0.5,
    "logit_bias": {"50256": -100},
    "logprobs": True,
    "top_logprobs": 2,
    "n": 2,
    "seed": 7,
    "user": "user-1",
    "reasoning_effort": "low",
    "metadata": {"team": "search"},
}
# what reaches each preset of KITCHEN_SINK: (body, dropped in the order routing names them)
FORWARDED_AS_SENT = {k: v for k, v in KITCHEN_SINK.items() if k != "reasoning_effort"}
WITH_MAX_COMPLETION_TOKENS = {
    **{k: v for k, v in FORWARDED_AS_SENT.items() if k != "max_tokens"},
    "max_completion_tokens": 50,
}
EXPECTED_SINK: dict[str, tuple[dict[str, Any], list[str]]] = {
    "openai": (WITH_MAX_COMPLETION_TOKENS, ["reasoning_effort"]),
    "groq": (
        {
            k: v
            for k, v in WITH_MAX_COMPLETION_TOKENS.items()
            if k not in ("logit_bias", "logprobs", "top_logprobs", "n")
        },
        ["logprobs", "top_logprobs", "n", "reasoning_effort", "logit_bias"],
    ),
    "together": (FORWARDED_AS_SENT, ["reasoning_effort"]),
    "deepseek": (FORWARDED_AS_SENT, ["reasoning_effort"]),
    "mistral": (
        {
            "messages": MESSAGES,
            "max_tokens": 50,
            "temperature": 0.5,
            "n": 2,
            "random_seed": 7,
        },
        ["logprobs", "top_logprobs", "reasoning_effort", "logit_bias", "user", "metadata"],
    ),
    "fireworks": (FORWARDED_AS_SENT, ["reasoning_effort"]),
    "openrouter": (FORWARDED_AS_SENT, ["reasoning_effort"]),
    "xai": (WITH_MAX_COMPLETION_TOKENS, ["reasoning_effort"]),
    "perplexity": (
        {k: v for k, v in FORWARDED_AS_SENT.items() if k not in ("logprobs", "top_logprobs", "n")},
        ["logprobs", "top_logprobs", "n", "reasoning_effort"],
    ),
    "vllm": (FORWARDED_AS_SENT, ["reasoning_effort"]),
    "ollama": (FORWARDED_AS_SENT, ["reasoning_effort"]),
}
STREAM_USAGE = {
    "openai": True,
    "groq": True,
    "together": False,
    "deepseek": True,
    "mistral": False,
    "fireworks": False,
    "openrouter": False,
    "xai": True,
    "perplexity": False,
    "vllm": True,
    "ollama": True,
}


def model_id(preset: str) -> str:
    # not in the model catalogue, so each deployment has its preset's capabilities
    return f"test-{preset}-model"


def gateway_config(base_url: str) -> dict[str, Any]:
    """One provider per preset, all pointed at the mock; model `m-<preset>` on each."""
    prices = {"input_per_mtok": 1, "output_per_mtok": 2}
    return {
        "auth": "none",
        "providers": {
            preset: {"kind": "openai", "preset": preset, "base_url": base_url, "api_key": "k"}
            for preset in PRESETS
        },
        "models": {
            f"m-{preset}": {
                "deployments": [{"provider": preset, "model": model_id(preset), **prices}]
            }
            for preset in PRESETS
        },
    }


@pytest.fixture(scope="module")
def gateway(shared_upstream: MockUpstream) -> Iterator[GatewayServer]:
    server = GatewayServer(gateway_config(f"http://127.0.0.1:{shared_upstream.port}/v1"))
    server.start()
    yield server
    server.stop()


def provider_for(preset: str, **overrides: Any) -> OpenAIProvider:
    config = parse_config(
        {"auth": "none", "providers": {"p": {"kind": "openai", "preset": preset, **overrides}}}
    ).providers["p"]
    provider = build_provider("p", config)
    assert isinstance(provider, OpenAIProvider)
    return provider


def call_for(body: dict[str, Any]) -> ProviderCall:
    request, _ = decode_chat_body(json.dumps({"model": "m", **body}).encode())
    return ProviderCall(request=request, model="vendor-model")


# --------------------------------------------------------------------------- base URLs


def test_the_table_covers_every_preset() -> None:
    assert set(PRESETS) == set(BASE_URLS) == set(EXPECTED_SINK) == set(STREAM_USAGE)


@pytest.mark.parametrize("preset", sorted(BASE_URLS))
def test_each_preset_supplies_its_base_url(preset: str) -> None:
    provider = provider_for(preset)
    assert provider.url_for(call_for({"messages": MESSAGES})) == (
        BASE_URLS[preset] + "/chat/completions"
    )


def test_an_explicit_base_url_wins_over_the_preset() -> None:
    provider = provider_for("groq", base_url="https://groq.internal.example/openai/v1/")
    assert provider.url_for(call_for({"messages": MESSAGES})) == (
        "https://groq.internal.example/openai/v1/chat/completions"
    )


def test_without_a_preset_the_body_goes_as_sent() -> None:
    config = OpenAIConfig(base_url="https://llm.example/v1")
    provider = OpenAIProvider("p", config)
    assert provider.capabilities == Capabilities()
    request = call_for(KITCHEN_SINK).request
    assert provider.unsupported_params(request, provider.capabilities) == ["reasoning_effort"]


# --------------------------------------------------------------------------- overrides


def test_explicit_quirks_win_over_the_preset() -> None:
    provider = provider_for(
        "groq",
        output_limit_field="max_tokens",
        drop_params=["user"],
        stream_usage=False,
        capabilities={"logprobs": True, "vision": False},
    )
    assert provider.capabilities == Capabilities(
        logprobs=True, vision=False, multiple_choices=False
    )
    call = call_for({**KITCHEN_SINK, "stream": True, "stream_options": {"include_usage": True}})
    dropped = provider.unsupported_params(call.request, provider.capabilities)
    assert dropped == ["n", "reasoning_effort", "user", "stream_options"]
    call.drop_params = tuple(dropped)
    assert json.loads(provider.body_for(call)) == {
        "model": "vendor-model",
        "messages": MESSAGES,
        "max_tokens": 50,
        "temperature": 0.5,
        "logit_bias": {"50256": -100},
        "logprobs": True,
        "top_logprobs": 2,
        "seed": 7,
        "metadata": {"team": "search"},
        "stream": True,
    }


def test_output_limit_as_sent_turns_the_rename_off() -> None:
    provider = provider_for("openai", output_limit_field="as_sent")
    call = call_for({"messages": MESSAGES, "max_tokens": 9})
    assert json.loads(provider.body_for(call))["max_tokens"] == 9


# --------------------------------------------------------------------------- forwarded bodies


@pytest.mark.parametrize("preset", sorted(EXPECTED_SINK))
def test_forwarded_body_per_preset(
    gateway: GatewayServer, upstream: MockUpstream, preset: str
) -> None:
    response = gateway.post({"model": f"m-{preset}", **KITCHEN_SINK})
    assert response.status_code == 200, response.text

    body, dropped = EXPECTED_SINK[preset]
    [sent] = upstream.requests
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.json == {"model": model_id(preset), **body}
    assert response.headers["x-switchboard-dropped-params"] == ",".join(dropped)


@pytest.mark.parametrize("preset", sorted(EXPECTED_SINK))
def test_unsupported_params_name_exactly_what_is_left_out(preset: str) -> None:
    provider = provider_for(preset)
    call = call_for(KITCHEN_SINK)
    dropped = provider.unsupported_params(call.request, provider.capabilities)
    assert dropped == EXPECTED_SINK[preset][1]
    call.drop_params = tuple(dropped)
    sent = json.loads(provider.body_for(call))
    assert not set(dropped) & set(sent)


@pytest.mark.parametrize(
    ("preset", "limit", "expected"),
    [
        ("mistral", {"max_completion_tokens": 20}, {"max_tokens": 20}),
        ("openai", {"max_tokens": 20}, {"max_completion_tokens": 20}),
        ("openai", {"max_completion_tokens": 20}, {"max_completion_tokens": 20}),
        # both sent: max_completion_tokens is the one honoured, as ChatRequest does
        ("groq", {"max_tokens": 90, "max_completion_tokens": 20}, {"max_completion_tokens": 20}),
        ("together", {"max_completion_tokens": None, "max_tokens": 20}, {"max_tokens": 20}),
    ],
)
def test_the_output_limit_travels_in_the_field_the_vendor_wants(
    gateway: GatewayServer,
    upstream: MockUpstream,
    preset: str,
    limit: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    response = gateway.post({"model": f"m-{preset}", "messages": MESSAGES, **limit})
    assert response.status_code == 200, response.text
    assert upstream.last_request.json == {
        "model": model_id(preset),
        "messages": MESSAGES,
        **expected,
    }
    assert "x-switchboard-dropped-params" not in response.headers


def test_perplexity_is_passed_over_for_tools(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    response = gateway.post(
        {"model": "m-perplexity", "messages": MESSAGES, "tools": [WEATHER_TOOL]}
    )
    assert response.status_code == 400
    assert "tools" in response.json()["error"]["message"]
    assert upstream.requests == []


def test_perplexity_drops_stray_tool_fields(gateway: GatewayServer, upstream: MockUpstream) -> None:
    response = gateway.post(
        {"model": "m-perplexity", "messages": MESSAGES, "tools": [], "tool_choice": "none"}
    )
    assert response.status_code == 200, response.text
    assert upstream.last_request.json == {"model": model_id("perplexity"), "messages": MESSAGES}
    assert response.headers["x-switchboard-dropped-params"] == "tools,tool_choice"


# --------------------------------------------------------------------------- stream usage


def events_of(body: bytes) -> list[Any]:
    data = [line[6:] for line in body.split(b"\n") if line.startswith(b"data: ")]
    assert data[-1] == b"[DONE]"
    return [json.loads(d) for d in data[:-1]]


@pytest.mark.parametrize("client_options", [False, True], ids=["no_options", "client_options"])
@pytest.mark.parametrize("preset", sorted(STREAM_USAGE))
def test_include_usage_is_asked_for_only_where_supported(
    gateway: GatewayServer, upstream: MockUpstream, preset: str, client_options: bool
) -> None:
    options = {"stream_options": {"include_usage": True}} if client_options else {}
    response = gateway.post(
        {"model": f"m-{preset}", "messages": MESSAGES, "stream": True, **options}
    )
    assert response.status_code == 200, response.text
    supported = STREAM_USAGE[preset]
    expected: dict[str, Any] = {"model": model_id(preset), "messages": MESSAGES, "stream": True}
    if supported:
        expected["stream_options"] = {"include_usage": True}
    assert upstream.last_request.json == expected

    dropped = response.headers.get("x-switchboard-dropped-params")
    assert dropped == (None if supported or not client_options else "stream_options")
    # the closing chunk carries usage either way: the upstream's, or the gateway's count
    closing = events_of(response.content)[-1]
    assert closing["choices"] == []
    assert closing["routing_metadata"]["cost"]["estimated"] is not supported


def test_a_stream_with_usage_on_its_last_choice_chunk_is_priced_from_it(
    gateway: GatewayServer, upstream: MockUpstream
) -> None:
    """Vendors without stream_options (Together, Fireworks, OpenRouter) put usage on the
    final chunk themselves; that usage is what the stream is priced with."""
    base = {"id": "cmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "x"}
    usage = {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}
    upstream.enqueue(
        SSEReply(
            [
                {
                    **base,
                    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}],
                },
                {
                    **base,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    "usage": usage,
                },
            ]
        )
    )
    response = gateway.post({"model": "m-together", "messages": MESSAGES, "stream": True})
    closing = events_of(response.content)[-1]
    assert closing["usage"]["prompt_tokens"] == 11
    assert closing["routing_metadata"]["cost"]["estimated"] is False


# --------------------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    ("provider", "expected"),
    [
        (
            {"kind": "openai", "api_key": "k"},
            "providers.p.base_url: required when no `preset` supplies it",
        ),
        (
            {"kind": "openai", "preset": "grok"},
            "providers.p.preset: Invalid enum value 'grok'",
        ),
        (
            {"kind": "openai", "preset": "groq", "output_limit_field": "max_output_tokens"},
            "providers.p.output_limit_field: Invalid enum value 'max_output_tokens'",
        ),
        (
            {"kind": "openai", "preset": "groq", "capabilities": {"vison": False}},
            "providers.p.capabilities: Object contains unknown field `vison`",
        ),
        (
            {"kind": "openai", "preset": "groq", "base_url": "api.groq.com"},
            "providers.p.base_url: Expected `str` matching regex",
        ),
    ],
)
def test_config_errors_name_the_path(provider: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config({"auth": "none", "providers": {"p": provider}})
    assert str(raised.value).startswith(expected)


def test_a_preset_config_keeps_its_key_out_of_its_repr() -> None:
    config = parse_config(
        {
            "auth": "none",
            "providers": {"p": {"kind": "openai", "preset": "xai", "api_key": "xai-s3"}},
        }
    ).providers["p"]
    assert "xai-s3" not in repr(config)
    assert "https://api.x.ai/v1" in repr(config)
