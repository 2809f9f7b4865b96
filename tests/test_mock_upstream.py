"""Tests for the mock upstream harness, over real sockets with httpx."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import openai
import pytest

from tests import mock_upstream as harness
from tests.mock_upstream import (
    DEFAULT_TEXT,
    ErrorReply,
    HangReply,
    JSONReply,
    MockUpstream,
    RawReply,
    SSEReply,
    chunk,
    completion,
    usage_chunk,
)

# Re-export the fixtures so pytest finds them here. (Importing them by name trips ruff's
# F811 at every use; pytest_plugins warns that the module is already imported.)
mock_upstream = harness.mock_upstream
mock_upstream_factory = harness.mock_upstream_factory

CHAT = {"model": "gpt-test", "messages": [{"role": "user", "content": "say hi please"}]}


def sse_events(text: str) -> list[str]:
    """The `data:` payloads of an SSE body, in order."""
    return [line[len("data: ") :] for line in text.split("\n") if line.startswith("data: ")]


def stream_chat(server: MockUpstream, **extra: Any) -> tuple[httpx.Response, list[str]]:
    r = httpx.post(f"{server.url}/chat/completions", json={**CHAT, "stream": True, **extra})
    return r, sse_events(r.text)


def test_default_completion(mock_upstream: MockUpstream) -> None:
    r = httpx.post(f"{mock_upstream.url}/chat/completions", json=CHAT)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-test"  # echoes the request
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": DEFAULT_TEXT, "refusal": None}
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["prompt_tokens"] == 3  # words in the messages
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_default_stream_without_usage(mock_upstream: MockUpstream) -> None:
    r, events = stream_chat(mock_upstream)
    assert r.headers["content-type"] == "text/event-stream"
    assert r.headers["transfer-encoding"] == "chunked"
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "gpt-test" for c in chunks)
    assert all("usage" not in c for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == DEFAULT_TEXT
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_default_stream_with_usage_chunk(mock_upstream: MockUpstream) -> None:
    _, events = stream_chat(mock_upstream, stream_options={"include_usage": True})
    chunks = [json.loads(e) for e in events[:-1]]
    *body, last = chunks
    assert all(c["usage"] is None for c in body)  # null on every chunk but the last
    assert last["choices"] == []
    assert last["usage"]["total_tokens"] == 3 + 4
    # An explicit include_usage on the reply overrides what the request asked.
    mock_upstream.enqueue(SSEReply(include_usage=False))
    _, events = stream_chat(mock_upstream, stream_options={"include_usage": True})
    assert all("usage" not in json.loads(e) for e in events[:-1])


def test_error_reply(mock_upstream: MockUpstream) -> None:
    mock_upstream.enqueue(
        ErrorReply(429, "Rate limit reached", type="rate_limit_error", headers={"retry-after": "2"})
    )
    r = httpx.post(f"{mock_upstream.url}/chat/completions", json=CHAT)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "2"
    assert r.json() == {
        "error": {
            "message": "Rate limit reached",
            "type": "rate_limit_error",
            "param": None,
            "code": None,
        }
    }


def test_raw_reply(mock_upstream: MockUpstream) -> None:
    html = b"<html><body>502 Bad Gateway</body></html>"
    mock_upstream.enqueue(RawReply(html, status=502, content_type="text/html"))
    r = httpx.post(f"{mock_upstream.url}/chat/completions", json=CHAT)
    assert (r.status_code, r.content) == (502, html)
    assert r.headers["content-type"].startswith("text/html")


def test_custom_chunks_and_verbatim_text(mock_upstream: MockUpstream) -> None:
    mock_upstream.enqueue(
        SSEReply(
            [": keep-alive\n\n", chunk("hi", role="assistant"), "event: x\ndata: a\ndata: b\n\n"],
            send_done=False,
        )
    )
    r = httpx.post(f"{mock_upstream.url}/chat/completions", json={**CHAT, "stream": True})
    assert r.text.startswith(": keep-alive\n\ndata: {")
    assert r.text.endswith("\n\nevent: x\ndata: a\ndata: b\n\n")  # no [DONE]


def test_cut_after_truncates_the_body(mock_upstream: MockUpstream) -> None:
    mock_upstream.enqueue(SSEReply(cut_after=2))
    lines: list[str] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream(
            "POST", f"{mock_upstream.url}/chat/completions", json={**CHAT, "stream": True}
        ) as r,
    ):
        lines.extend(r.iter_lines())
    assert len(sse_events("\n".join(lines))) == 2
    assert mock_upstream.disconnects == 0  # a server-side cut is not a client disconnect


def test_hang_with_client_timeout_is_a_disconnect(mock_upstream: MockUpstream) -> None:
    mock_upstream.enqueue(HangReply())
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{mock_upstream.url}/chat/completions", json=CHAT, timeout=0.2)
    assert mock_upstream.wait_for_disconnect(timeout=30)
    assert mock_upstream.disconnects == 1


def test_disconnect_mid_stream(mock_upstream: MockUpstream) -> None:
    mock_upstream.enqueue(SSEReply([chunk("x")] * 100, delay_between=0.05))
    url = f"{mock_upstream.url}/chat/completions"
    with httpx.stream("POST", url, json={**CHAT, "stream": True}) as r:
        assert next(r.iter_lines()).startswith("data: ")
    # Leaving the block closes the half-read connection while the server sleeps.
    started = time.monotonic()
    assert mock_upstream.wait_for_disconnect(timeout=30)
    assert time.monotonic() - started < 1
    assert mock_upstream.disconnects == 1


async def test_disconnect_mid_stream_async(mock_upstream: MockUpstream) -> None:
    mock_upstream.enqueue(SSEReply([chunk("x")] * 100, delay_between=0.05))
    async with (
        httpx.AsyncClient() as client,
        client.stream(
            "POST", f"{mock_upstream.url}/chat/completions", json={**CHAT, "stream": True}
        ) as r,
    ):
        async for line in r.aiter_lines():
            assert line.startswith("data: ")
            break
    assert await mock_upstream.await_disconnect(timeout=30)


async def test_hang_async_does_not_block_the_loop(mock_upstream: MockUpstream) -> None:
    mock_upstream.enqueue(HangReply())
    async with httpx.AsyncClient(timeout=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(f"{mock_upstream.url}/chat/completions", json=CHAT)
    assert await mock_upstream.await_requests(1, timeout=30)
    assert await mock_upstream.await_disconnect(timeout=30)


def test_recording(mock_upstream: MockUpstream) -> None:
    httpx.post(
        f"{mock_upstream.url}/chat/completions?api-version=1",
        json=CHAT,
        headers={"Authorization": "Bearer sk-test", "X-Custom": "yes"},
    )
    httpx.post(f"{mock_upstream.url}/embeddings", content=b"not json")
    first, second = mock_upstream.requests
    assert (first.method, first.path, first.query) == (
        "POST",
        "/v1/chat/completions",
        {"api-version": "1"},
    )
    assert first.headers["authorization"] == "Bearer sk-test"
    assert first.headers["x-custom"] == "yes"
    assert first.json == CHAT
    assert json.loads(first.body) == CHAT
    assert (second.path, second.body, second.json) == ("/v1/embeddings", b"not json", None)


def test_unknown_path_is_404_unless_scripted(mock_upstream: MockUpstream) -> None:
    r = httpx.post(f"{mock_upstream.url}/moderations", json={})
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "invalid_request_error"
    mock_upstream.enqueue(JSONReply({"object": "list", "data": []}))
    assert httpx.post(f"{mock_upstream.url}/moderations", json={}).json()["object"] == "list"


def test_enqueue_fifo_then_default(mock_upstream: MockUpstream) -> None:
    mock_upstream.enqueue(JSONReply(completion("one")), ErrorReply(500, "boom"))
    mock_upstream.enqueue(JSONReply(completion("three")))

    def post() -> httpx.Response:
        return httpx.post(f"{mock_upstream.url}/chat/completions", json=CHAT)

    assert post().json()["choices"][0]["message"]["content"] == "one"
    assert post().status_code == 500
    assert post().json()["choices"][0]["message"]["content"] == "three"
    assert post().json()["choices"][0]["message"]["content"] == DEFAULT_TEXT


def test_set_default_and_reset(mock_upstream: MockUpstream) -> None:
    mock_upstream.set_default(ErrorReply(503, "down", type="server_error"))
    url = f"{mock_upstream.url}/chat/completions"
    assert [httpx.post(url, json=CHAT).status_code for _ in range(2)] == [503, 503]
    mock_upstream.enqueue(HangReply())
    mock_upstream.reset()
    assert mock_upstream.requests == []
    assert httpx.post(url, json=CHAT).status_code == 200


def test_factory_and_stop_with_a_hang_in_flight(
    mock_upstream_factory: Callable[[], MockUpstream],
) -> None:
    a, b = mock_upstream_factory(), mock_upstream_factory()
    assert a.port != b.port
    a.enqueue(HangReply())
    errors: list[Exception] = []

    def call() -> None:
        try:
            httpx.post(f"{a.url}/chat/completions", json=CHAT, timeout=5)
        except httpx.HTTPError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    assert a.wait_for_requests(1, timeout=30)
    started = time.monotonic()
    a.stop()
    assert time.monotonic() - started < 1
    caller.join(timeout=2)
    assert len(errors) == 1  # the client saw the connection go away
    assert a.disconnects == 0  # our own shutdown is not a client disconnect


def test_openai_sdk_understands_it(mock_upstream: MockUpstream) -> None:
    client = openai.OpenAI(base_url=mock_upstream.url, api_key="sk-test", max_retries=0)
    result = client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}]
    )
    assert result.choices[0].message.content == DEFAULT_TEXT
    mock_upstream.enqueue(
        SSEReply(
            [
                chunk("ab", role="assistant"),
                chunk(finish_reason="stop"),
                usage_chunk(),
            ]
        )
    )
    stream = client.chat.completions.create(
        model="gpt-test",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.content == "ab"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 14
    mock_upstream.enqueue(ErrorReply(429, "slow down", type="rate_limit_error"))
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert mock_upstream.last_request.headers["authorization"] == "Bearer sk-test"
