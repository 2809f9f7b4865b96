"""Golden tests of the Messages API ingress's translations, both ways
(tests/fixtures/messages/README.md says where each shape comes from):

- Messages request → chat request (`request_*.json`), and what is named as dropped;
- chat completion → Message (`response_*.json`);
- chat chunks → the Messages event sequence (`stream_*.json`);
- the client's body → what a Messages-speaking deployment receives, byte for byte
  (`native_*.json`);
- an Anthropic event stream → the same events for the client (the Anthropic adapter's
  recorded streams in tests/fixtures/anthropic).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gateway.ingress.messages.chat_stream import ChatToMessages
from gateway.ingress.messages.decoding import decode_messages
from gateway.ingress.messages.errors import anthropic_error_json, anthropic_status
from gateway.ingress.messages.from_chat import messages_answer, usage_out
from gateway.ingress.messages.operations import native_fields
from gateway.ingress.messages.planning import messages_needs, with_output_limit
from gateway.ingress.messages.to_chat import to_chat
from providers.anthropic.adapter import native_body
from providers.anthropic.native import MessagesCall, drop_refused_by_anthropic
from providers.anthropic.relay import MessagesRelay
from providers.base import StreamChunk
from providers.bedrock.invoke import count_tokens_body, drop_refused_by_bedrock, invoke_body
from providers.capabilities import Capabilities
from providers.errors import (
    AuthenticationFailed,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RequestTooLarge,
    SwitchboardError,
    UpstreamAuthFailed,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from providers.openai.wire import UsageView
from providers.sse import SSEDecoder
from routing.deployments import Deployment, Prices
from routing.errors import NoCandidate, RoutingFailed

FIXTURES = Path(__file__).parent / "fixtures" / "messages"
PRICES = Prices(input_per_mtok=1.0, output_per_mtok=1.0, cached_input_per_mtok=1.0)
ANTHROPIC_FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def names(prefix: str) -> list[str]:
    return sorted(p.name for p in FIXTURES.glob(f"{prefix}_*.json"))


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


# --------------------------------------------------------------------------- requests


@pytest.mark.parametrize("name", names("request"))
def test_messages_request_becomes_chat(name: str) -> None:
    case = load(name)
    translation = to_chat(decode_messages(body(case["messages"])), tuple(case.get("betas", [])))
    sent = msgspec.json.decode(msgspec.json.encode(translation.chat.raw))
    assert sent == case["chat"]
    assert translation.dropped == case["dropped"]


def test_a_deployments_own_drops_are_named_as_the_client_sent_them() -> None:
    translation = to_chat(decode_messages(body(load("request_claude_code.json")["messages"])))
    assert translation.messages_names(("reasoning_effort", "user", "logprobs")) == [
        "output_config.effort",
        "metadata",
        "logprobs",
    ]
    budget = {"type": "enabled", "budget_tokens": 20000}
    request = {
        "model": "m",
        "max_tokens": 9,
        "thinking": budget,
        "messages": [{"role": "user", "content": "x"}],
    }
    translation = to_chat(decode_messages(body(request)))
    assert translation.chat.reasoning_effort == "high"
    assert translation.messages_names(("reasoning_effort",)) == ["thinking"]


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"model": "m", "max_tokens": 5}, "messages"),
        ({"model": "m", "max_tokens": 5, "messages": []}, "messages"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        (
            {"model": "m", "max_tokens": -1, "messages": [{"role": "user", "content": "x"}]},
            "max_tokens",
        ),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].role",
        ),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user"}]}, "messages[0].content"),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "temperature": 1.5,
                "messages": [{"role": "user", "content": "x"}],
            },
            "temperature",
        ),
        ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
    ],
)
def test_a_bad_request_is_refused_naming_the_field(payload: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        decode_messages(body(payload))
    assert caught.value.param == param


def test_count_tokens_bodies_have_no_max_tokens() -> None:
    source = decode_messages(
        body({"model": "m", "messages": [{"role": "user", "content": "x"}]}), counting=True
    )
    assert source.options.models == ["m"]


def test_max_tokens_is_a_ceiling_within_each_deployments_maximum() -> None:
    request = {"model": "m", "max_tokens": 32000, "messages": [{"role": "user", "content": "x"}]}
    chat = to_chat(decode_messages(body(request))).chat
    capped = with_output_limit(chat, 16384)
    assert (capped.max_tokens, capped.raw["max_tokens"]) == (16384, msgspec.Raw(b"16384"))
    assert with_output_limit(chat, 64000) is chat
    assert with_output_limit(chat, None) is chat

    def deployment(limit: int | None) -> Deployment:
        capabilities = Capabilities(max_output_tokens=limit)
        return Deployment(provider="p", model="m", prices=PRICES, capabilities=capabilities)

    translation = to_chat(decode_messages(body(request)))
    needs = messages_needs(translation, [deployment(None), deployment(8192), deployment(16384)])
    assert needs.output_limit == 8192  # no deployment is passed over for it
    assert messages_needs(translation, [deployment(None)]).output_limit == 32000


# --------------------------------------------------------------------------- answers


@pytest.mark.parametrize("name", names("response"))
def test_chat_answer_becomes_a_message(name: str) -> None:
    case = load(name)
    message = messages_answer(body(case["chat"]), provider="up", request_id="req-1")
    usage = msgspec.json.decode(body(case["chat"]["usage"]), type=UsageView).usage()
    message.usage = usage_out(usage)
    assert msgspec.json.decode(msgspec.json.encode(message)) == case["messages"]


@pytest.mark.parametrize(
    "answer",
    [
        b"<html>bad gateway</html>",
        body(
            {
                "id": "x",
                "choices": [
                    {
                        "message": {
                            "tool_calls": [
                                {"id": "c", "function": {"name": "f", "arguments": "[1, 2]"}}
                            ]
                        }
                    }
                ],
            }
        ),
        body(
            {
                "id": "x",
                "choices": [
                    {
                        "message": {
                            "tool_calls": [
                                {"id": "c", "function": {"name": "f", "arguments": "{broken"}}
                            ]
                        }
                    }
                ],
            }
        ),
    ],
)
def test_an_answer_that_cannot_be_a_message_fails_the_try(answer: bytes) -> None:
    with pytest.raises(UpstreamProtocolError):
        messages_answer(answer, provider="up", request_id="req-1")


def test_calls_without_ids_get_unique_ones_and_empty_arguments_an_empty_object() -> None:
    answer = {
        "id": "x",
        "model": "m",
        "choices": [
            {
                "message": {
                    "tool_calls": [
                        {"function": {"name": "a", "arguments": ""}},
                        {"function": {"name": "b", "arguments": "{}"}},
                    ]
                },
                "finish_reason": "stop",
            }
        ],
    }
    message = messages_answer(body(answer), provider="up", request_id="req-1")
    encoded = msgspec.json.decode(msgspec.json.encode(message))
    assert [(b["id"], b["input"]) for b in encoded["content"]] == [
        ("toolu_req-1_0", {}),
        ("toolu_req-1_1", {}),
    ]
    assert encoded["stop_reason"] == "tool_use"  # calls were made, whatever finish_reason said


# --------------------------------------------------------------------------- streams


def chunk_of(case: dict[str, Any]) -> StreamChunk:
    usage = case["data"].get("usage")
    return StreamChunk(
        data=msgspec.json.encode(case["data"]),
        usage=msgspec.json.decode(body(usage), type=UsageView).usage() if usage else None,
        has_output=case["has_output"],
        usage_only=case.get("usage_only", False),
    )


def events_of(chunks: list[StreamChunk]) -> list[list[Any]]:
    """What the client reads: every framed event, then the held-back `message_stop`."""
    decoder = SSEDecoder()
    events: list[list[Any]] = []
    for chunk in chunks:
        if chunk.usage_only:
            events.append(["message_stop", json.loads(chunk.data)])
            continue
        events += [[e.event.decode(), json.loads(e.data)] for e in decoder.feed_block(chunk.data)]
    return events


@pytest.mark.parametrize("name", names("stream"))
def test_chat_chunks_become_the_messages_event_sequence(name: str) -> None:
    case = load(name)
    chat = to_chat(decode_messages(body(case["messages"]))).chat
    prompt = chat.estimated_prompt_tokens()  # what the plan estimates
    translator = ChatToMessages(prompt_tokens=prompt, provider="up", request_id="req-1")
    inputs = [chunk_of(c) for c in case["chunks"]]
    flags = [(i.has_output, i.usage) for i in inputs]
    outputs = [translator.feed(c) for c in inputs]
    # one chunk out per chunk in, with its output flag and usage: routing counts the
    # translated stream as it would count the chat stream
    assert [(o.has_output, o.usage) for o in outputs] == flags
    assert not any(o.usage_only for o in outputs)  # only the closing message_stop is
    assert events_of([*outputs, *translator.finish()]) == case["events"]


# --------------------------------------------------------------------------- native


def test_the_client_body_reaches_anthropic_byte_for_byte() -> None:
    case = load("native_anthropic.json")
    source = decode_messages(case["client"].encode())
    call = MessagesCall(fields=native_fields(source), model=case["deployment_model"])
    assert native_body(call).decode() == case["upstream"]


def test_a_body_without_unsigned_thinking_is_not_rewritten() -> None:
    client = '{"model": "m", "max_tokens": 5, "messages": [{"role": "user",  "content": "x"}]}'
    source = decode_messages(client.encode())
    assert native_fields(source) is source.fields
    call = MessagesCall(fields=source.fields, model="claude-x")
    assert (
        native_body(call)
        == b'{"model":"claude-x","max_tokens":5,"messages":[{"role": "user",  "content": "x"}]}'
    )


def test_the_client_body_reaches_bedrock_as_its_native_claude_body() -> None:
    case = load("native_bedrock_invoke.json")
    source = decode_messages(case["client"].encode())
    call = MessagesCall(
        fields=native_fields(source), model=case["deployment_model"], betas=tuple(case["betas"])
    )
    assert invoke_body(call).decode() == case["upstream"]
    counted = json.loads(count_tokens_body(call))
    counted_body = json.loads(base64.b64decode(counted["input"]["invokeModel"]["body"]))
    assert counted_body == json.loads(case["upstream"])  # it has a max_tokens already


@pytest.mark.parametrize(
    ("message", "betas", "fields", "dropped"),
    [
        (
            "Unexpected value(s) `prompt-caching-scope-2026-01-05`, `afk-mode-2026-01-31` for "
            "the `anthropic-beta` header. Please consult our documentation at docs.claude.com "
            "or try again without the header.",
            ("claude-code-20250219", "prompt-caching-scope-2026-01-05", "afk-mode-2026-01-31"),
            ("claude-code-20250219",),
            [
                "anthropic-beta:prompt-caching-scope-2026-01-05",
                "anthropic-beta:afk-mode-2026-01-31",
            ],
        ),
        (
            "Unexpected value(s) afk-mode-2026-01-31 for the anthropic-beta header.",
            ("afk-mode-2026-01-31", "effort-2025-11-24"),
            ("effort-2025-11-24",),
            ["anthropic-beta:afk-mode-2026-01-31"],
        ),
        (
            "context_management: Extra inputs are not permitted",
            ("a",),
            ("a",),
            ["context_management"],
        ),
        ("messages.0.content: Field required", ("a",), ("a",), []),
        ("model: Extra inputs are not permitted", (), (), []),
    ],
)
def test_what_anthropic_refuses_by_name_is_left_out(
    message: str, betas: tuple[str, ...], fields: tuple[str, ...], dropped: list[str]
) -> None:
    call = MessagesCall(
        fields={"model": msgspec.Raw(b'"m"'), "context_management": msgspec.Raw(b"{}")},
        model="m",
        betas=betas,
    )
    assert drop_refused_by_anthropic(call, message) is bool(dropped)
    assert call.dropped == dropped
    assert call.betas == fields


def test_what_bedrock_refuses_by_name_is_left_out() -> None:
    call = MessagesCall(
        fields={
            "messages": msgspec.Raw(b"[]"),
            "context_management": msgspec.Raw(b"{}"),
            "x": msgspec.Raw(b"1"),
        },
        model="m",
        betas=("a", "b"),
    )
    original = call.fields
    message = (
        "Malformed input request: #: extraneous key [context_management] is not permitted"
        "#: extraneous key [x] is not permitted, please reformat your input and try again."
    )
    assert drop_refused_by_bedrock(call, message)
    assert list(call.fields) == ["messages"] and "x" in original  # the shared dict is kept
    assert drop_refused_by_bedrock(call, "ValidationException: invalid beta flag")
    assert call.betas == ()
    assert call.dropped == ["context_management", "x", "anthropic-beta:a", "anthropic-beta:b"]
    assert not drop_refused_by_bedrock(call, "#/messages/0: extraneous key [y] is not permitted")


def sse_events(name: str) -> list[tuple[str, Any]]:
    text = (ANTHROPIC_FIXTURES / name).read_text()
    decoder = SSEDecoder()
    return [(e.event.decode(), e.data) for e in decoder.feed_block(text.encode())]


@pytest.mark.parametrize("name", ["stream_text.sse", "stream_tool_use.sse", "stream_thinking.sse"])
def test_an_anthropic_stream_reaches_the_client_event_for_event(name: str) -> None:
    relay = MessagesRelay("claude")
    upstream = sse_events(name)
    chunks = [relay.feed(data) for _, data in upstream]
    assert relay.finished
    decoder = SSEDecoder()
    relayed: list[tuple[str, Any]] = []
    for chunk in chunks:
        if chunk.usage_only:
            relayed.append(("message_stop", chunk.data))
        else:
            relayed += [(e.event.decode(), e.data) for e in decoder.feed_block(chunk.data)]
    assert relayed == upstream  # names and data bytes as Anthropic sent them
    usage = [c.usage for c in chunks if c.usage is not None][-1]
    assert usage.completion_tokens > 0
    assert any(c.has_output for c in chunks)


def test_an_anthropic_error_event_is_raised_as_its_class() -> None:
    relay = MessagesRelay("claude")
    relay.feed(
        b'{"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":1}}}'
    )
    with pytest.raises(UpstreamUnavailable):
        relay.feed(b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}')
    with pytest.raises(UpstreamProtocolError):
        MessagesRelay("claude").feed(b'{"type":"content_block_delta","index":0}')


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (InvalidRequest("bad"), "invalid_request_error"),
        (NoCandidate("none"), "invalid_request_error"),
        (AuthenticationFailed("who"), "authentication_error"),
        (PermissionDenied("no"), "permission_error"),
        (NotFound("where"), "not_found_error"),
        (RequestTooLarge("big"), "request_too_large"),
        (UpstreamRateLimited("slow down"), "rate_limit_error"),
        (UpstreamUnavailable("down"), "overloaded_error"),
        (RoutingFailed("circuits open", [], code="no_healthy_deployment"), "overloaded_error"),
        (UpstreamTimeout("late"), "timeout_error"),
        (UpstreamAuthFailed("our key"), "api_error"),
        (RoutingFailed("all failed", []), "api_error"),
        (SwitchboardError("bug"), "api_error"),
    ],
)
def test_errors_take_anthropics_envelope_and_types(error: SwitchboardError, kind: str) -> None:
    assert json.loads(anthropic_error_json(error, "req-9")) == {
        "type": "error",
        "error": {"type": kind, "message": error.message},
        "request_id": "req-9",
    }
    # the gateway's status, but Anthropic's 529 for overload (the SDK's OverloadedError)
    assert anthropic_status(error) == (529 if kind == "overloaded_error" else error.status)
