"""The OpenAI-wire stream reader on exact network reads, and answers in the looser shapes
compatible servers send.

The HTTP client is replaced by one that hands the adapter the given blocks, so what
arrived in one read (which decides `more_buffered`) is exact rather than up to TCP.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest

import providers.errors as errors
from gateway.chat_decoding import decode_chat_body
from providers.base import ProviderCall, StreamChunk
from providers.chat_types import CompletionTokensDetails, PromptTokensDetails, Usage
from providers.openai.adapter import OpenAIProvider
from providers.openai.config import OpenAIConfig
from tests.mock_upstream import JSONReply, MockUpstream, SSEReply, completion

BASE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
# usage as LiteLLM-based servers and Mistral send it: nulls for counts they do not keep
NULLISH_USAGE = {
    "prompt_tokens": 5,
    "completion_tokens": 2,
    "total_tokens": 7,
    "prompt_tokens_details": {"cached_tokens": None, "audio_tokens": None},
    "completion_tokens_details": None,
}
PLAIN_USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def event(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return b"data: " + json.dumps({**BASE, "choices": choices, **extra}).encode() + b"\n\n"


class _Blocks:
    """An open upstream stream whose body arrives in the given reads."""

    status = 200
    headers: Mapping[str, str] = {}

    def __init__(self, blocks: list[bytes]) -> None:
        self._blocks = blocks

    async def read(self) -> bytes:
        return b"".join(self._blocks)

    async def blocks(self) -> AsyncIterator[bytes]:
        for block in self._blocks:
            yield block


class _ScriptedHTTP:
    def __init__(self, blocks: list[bytes]) -> None:
        self._blocks = blocks

    @asynccontextmanager
    async def open_stream(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> AsyncIterator[_Blocks]:
        yield _Blocks(self._blocks)

    async def aclose(self) -> None:
        pass


def call_for(stream: bool) -> ProviderCall:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    request, _ = decode_chat_body(json.dumps(body).encode())
    return ProviderCall(request=request, model="vendor-model")


async def stream_of(
    blocks: list[bytes], into: list[StreamChunk] | None = None
) -> list[StreamChunk]:
    provider = OpenAIProvider("vendor", OpenAIConfig(base_url="http://upstream.invalid/v1"))
    # scripted network reads in place of the pooled client: exact block boundaries
    provider._http = _ScriptedHTTP(blocks)  # type: ignore[assignment]
    chunks = [] if into is None else into
    async for chunk in provider.stream(call_for(stream=True)):
        chunks.append(chunk)
    return chunks


# --------------------------------------------------------------------------- more_buffered


async def test_more_buffered_is_true_only_before_another_chunk_of_the_same_read() -> None:
    chunks = await stream_of(
        [
            event({"role": "assistant", "content": ""}) + event({"content": "Hi"}),
            # the read ends in an event that is passed over: "Hi there" must not wait
            # for the next read to leave the gateway
            event({"content": " there"}) + event(prompt_filter_results=[]),
            event({}, "stop") + event(usage=PLAIN_USAGE) + b"data: [DONE]\n\n",
        ]
    )
    assert [json.loads(c.data)["choices"][:1] for c in chunks] == [
        [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
        [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}],
        [{"index": 0, "delta": {"content": " there"}, "finish_reason": None}],
        [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        [],
    ]
    assert [c.more_buffered for c in chunks] == [True, False, False, True, False]


async def test_chunks_before_an_error_in_the_same_read_still_go_out() -> None:
    received: list[StreamChunk] = []
    error = b'data: {"error": {"code": 502}}\n\n'
    with pytest.raises(errors.UpstreamUnavailable) as caught:
        await stream_of([event({"content": "Hi"}) + error], received)
    assert [json.loads(c.data)["choices"][0]["delta"] for c in received] == [{"content": "Hi"}]
    assert not received[0].more_buffered
    assert caught.value.message == "vendor: an error in place of a chunk"


# --------------------------------------------------------------------------- looser shapes


async def test_content_as_a_list_of_typed_chunks_is_output() -> None:
    """Mistral's reasoning models stream `content` as `thinking` and `text` chunks."""
    thinking = [{"type": "thinking", "thinking": [{"type": "text", "text": "Hm."}]}]
    chunks = await stream_of(
        [
            event({"role": "assistant", "content": thinking})
            + event({"content": [{"type": "text", "text": "Yes."}]})
            + event({}, "stop", usage=NULLISH_USAGE)
            + b"data: [DONE]\n\n"
        ]
    )
    assert [c.has_output for c in chunks] == [True, True, False]


async def test_reasoning_deltas_under_their_other_name_are_output() -> None:
    """Groq, OpenRouter and vLLM stream reasoning as `delta.reasoning`: it is the first
    generated text, so it marks time to first token."""
    chunks = await stream_of(
        [
            event({"role": "assistant", "content": ""})
            + event({"reasoning": "Let me think."})
            + event({"content": "Yes."})
            + event({}, "stop")
            + b"data: [DONE]\n\n"
        ]
    )
    assert [c.has_output for c in chunks] == [False, True, True, False]


async def test_a_legacy_function_call_delta_is_output() -> None:
    """Servers that still stream the pre-tools `function_call` (its name, then its
    arguments in pieces) send an object there; it is output, not a malformed chunk."""
    chunks = await stream_of(
        [
            event({"role": "assistant", "content": None, "function_call": {"name": "f"}})
            + event({"function_call": {"arguments": '{"x": 1}'}})
            + event({"function_call": None, "content": None})
            + event({}, "function_call")
            + b"data: [DONE]\n\n"
        ]
    )
    assert [c.has_output for c in chunks] == [True, True, False, False]


async def test_an_event_split_over_data_lines_is_one_chunk() -> None:
    """`data:` lines of one event are joined (SSE's rules) and sent on as one line."""
    chunks = await stream_of(
        [
            b'data: {"id": "c", "choices": [{"index": 0,\ndata:  "delta": {"content": "Hi"}}]}\n\n'
            + event({}, "stop")
            + b"data: [DONE]\n\n"
        ]
    )
    assert chunks[0].data == b'{"id": "c", "choices": [{"index": 0,  "delta": {"content": "Hi"}}]}'
    assert [c.has_output for c in chunks] == [True, False]


NULLISH_PRICED = Usage(
    prompt_tokens=5,
    completion_tokens=2,
    total_tokens=7,
    prompt_tokens_details=PromptTokensDetails(cached_tokens=0),
    completion_tokens_details=None,
)


async def test_a_usage_chunk_with_null_counts_is_read() -> None:
    chunks = await stream_of(
        [event({"content": "Hi"}, "stop"), event(usage=NULLISH_USAGE), b"data: [DONE]\n\n"]
    )
    closing = chunks[-1]
    assert closing.usage_only
    assert closing.usage == NULLISH_PRICED


async def test_a_completion_with_null_counts_is_read(upstream: MockUpstream) -> None:
    answer = {**completion(), "usage": NULLISH_USAGE}
    upstream.enqueue(JSONReply(answer))
    config = OpenAIConfig(base_url=f"http://127.0.0.1:{upstream.port}/v1")
    provider = OpenAIProvider("vendor", config)
    try:
        response = await provider.complete(call_for(stream=False))
    finally:
        await provider.aclose()
    assert json.loads(response.body) == answer
    assert response.usage == NULLISH_PRICED


async def test_usage_details_are_kept_for_pricing() -> None:
    usage = {
        "prompt_tokens": 50,
        "completion_tokens": 20,
        "total_tokens": 70,
        "prompt_tokens_details": {"cached_tokens": 40, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 12, "audio_tokens": 0},
    }
    chunks = await stream_of([event({}, "stop"), event(usage=usage), b"data: [DONE]\n\n"])
    assert chunks[-1].usage == Usage(
        prompt_tokens=50,
        completion_tokens=20,
        total_tokens=70,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=40),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=12),
    )


# --------------------------------------------------------------------------- connections


async def test_streams_ended_by_done_leave_their_connection_to_the_next(
    upstream: MockUpstream,
) -> None:
    """The reader stops at `[DONE]`, before the body's own end has arrived: the
    connection must still go back to the pool, not be closed (a new connection, TLS
    included, for every streamed request)."""
    provider = OpenAIProvider(
        "vendor", OpenAIConfig(base_url=f"http://127.0.0.1:{upstream.port}/v1")
    )
    try:
        for _ in range(8):
            upstream.enqueue(SSEReply())
            chunks = [chunk async for chunk in provider.stream(call_for(stream=True))]
            assert chunks[-1].usage_only
            # the rest of the body is read off the answer's path; let that finish
            await asyncio.gather(*getattr(provider._http, "_draining", ()))
    finally:
        await provider.aclose()
    assert len({request.client_port for request in upstream.requests}) == 1
