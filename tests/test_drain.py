"""Graceful shutdown, on a real `switchboard serve` process: SIGTERM while it serves 100
streams. Every stream ends with its closing chunk and `[DONE]`, new connections are
refused at once, and every outcome reaches Redis before the process exits."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from routing.stats import deployment_id
from routing.store.redis_store import RedisStore
from tests.gateway_process import GatewayProcess
from tests.gateway_server import upstream_config
from tests.mock_upstream import MockUpstream, SSEReply, chunk, usage_chunk
from tests.redis_server import RedisServer

STREAMS = 100
PIECES = 20  # content chunks per stream
GAP = 0.05  # seconds between them: each stream lasts about a second


def slow_stream() -> SSEReply:
    chunks: list[dict[str, Any] | str | bytes] = [chunk(role="assistant", content="")]
    chunks += [chunk(content=f"w{i} ") for i in range(PIECES)]
    chunks.append(chunk(finish_reason="stop"))
    chunks.append(usage_chunk())
    return SSEReply(chunks=chunks, delay_between=GAP)


async def one_stream(client: httpx.AsyncClient, started: asyncio.Queue[None]) -> list[str]:
    """The `data:` payloads of one stream, in order."""
    body = {
        "model": "test-model",
        "messages": [{"role": "user", "content": "tell me"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events: list[str] = []
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                if not events:
                    started.put_nowait(None)
                events.append(line.removeprefix("data: "))
    return events


# bounds sized for a loaded 2-core machine: each wait ends as soon as its condition holds
@pytest.mark.timeout(600)
async def test_sigterm_lets_100_streams_finish_and_flushes_their_outcomes(
    mock_upstream: MockUpstream, tmp_path: Path
) -> None:
    mock_upstream.set_default(slow_stream())
    with RedisServer() as redis_server:
        config = {**upstream_config(mock_upstream.url), "store": redis_server.url}
        gateway = GatewayProcess(config, tmp_path, "drain", "--drain-timeout", "300").start()
        try:
            limits = httpx.Limits(max_connections=STREAMS + 10)
            wait = httpx.Timeout(300)
            async with httpx.AsyncClient(
                base_url=gateway.url, timeout=wait, limits=limits
            ) as client:
                started: asyncio.Queue[None] = asyncio.Queue()
                streams = [asyncio.create_task(one_stream(client, started)) for _ in range(STREAMS)]
                for _ in range(STREAMS):  # every stream has its first chunk: all in flight
                    await asyncio.wait_for(started.get(), timeout=300)
                gateway.terminate()
                await _refused(gateway.url)  # the listening socket is closed at once
                results = await asyncio.gather(*streams)
            code = await asyncio.to_thread(gateway.wait, 300)
        finally:
            gateway.stop()
        assert code == 0, gateway.log.read_text()
        for events in results:
            assert events[-1] == "[DONE]"
            closing = json.loads(events[-2])
            assert closing["choices"] == []
            assert closing["usage"]["completion_tokens"] > 0
            assert closing["routing_metadata"]["provider"] == "mock"
            text = "".join(
                json.loads(e)["choices"][0]["delta"].get("content") or ""
                for e in events[:-2]
                if json.loads(e)["choices"]
            )
            assert text == "".join(f"w{i} " for i in range(PIECES))  # nothing cut short
        # every outcome reached Redis in the shutdown flush
        deployment = deployment_id("mock", "upstream-model-id")
        store = RedisStore(redis_server.url)
        store.track([deployment])
        await store.sync()
        try:
            assert store.snapshot().stats[deployment].requests == STREAMS
            assert store.snapshot().stats[deployment].errors == 0
        finally:
            await store.aclose()
        assert "Traceback" not in gateway.log.read_text()


async def _refused(url: str) -> None:
    """Wait until a new connection is refused; bounded, never a fixed sleep."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while loop.time() < deadline:
        try:
            async with httpx.AsyncClient(timeout=5) as fresh:
                await fresh.get(f"{url}/readyz")
        except httpx.ConnectError:
            return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.02)
    raise AssertionError("the gateway still accepted connections after SIGTERM")
