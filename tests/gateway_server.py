"""The real gateway on a real loopback socket, for end-to-end tests.

uvicorn runs the app in a background thread with its own event loop, exactly as
`switchboard serve` does, so sync clients and async tests can both call it over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest
import uvicorn

from gateway.app import create_app
from gateway.config import parse_config
from routing.router import Router
from routing.store.base import MetricsStore

# a config whose provider points at a mock upstream; tests override parts of it
BASE_CONFIG: dict[str, Any] = {"auth": "none", "store": "memory://"}


class GatewayServer:
    def __init__(self, config: dict[str, Any], clock: Callable[[], float] | None = None) -> None:
        """`clock`: routing's wall clock, for tests that move time on (a cooldown's end)
        rather than sleep through it; the machine's by default."""
        self._request_log: str | None = None
        if "logging" not in config:
            # the request log is on, as by default, into a file of its own: on stdout its
            # lines would land in whichever test's output is being captured then
            handle, self._request_log = tempfile.mkstemp(prefix="switchboard-requests-")
            os.close(handle)
            config = {**config, "logging": {"output": self._request_log}}
        self.config = parse_config(config)
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets it knows are TCP
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(self.config, clock=clock or time.time)
        server_config = uvicorn.Config(
            self.app,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=False,
            log_level="warning",
        )
        self._server = uvicorn.Server(server_config)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def start(self) -> GatewayServer:
        self._thread.start()
        for _ in range(200):
            if self._server.started:
                return self
            if not self._thread.is_alive():
                break
            threading.Event().wait(0.025)
        raise RuntimeError("the gateway did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
        if self._request_log is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._request_log)

    def forget_routing(self) -> None:
        """A fresh router on a fresh memory store: what one test taught a gateway that
        several tests share (a cooldown, an open circuit) must not decide the next test."""
        services = self.app.state.services
        services.store = MetricsStore(self.config.routing.metrics)
        services.router = Router(
            services.providers, services.models, self.config.routing, services.store
        )

    def sdk(self, api_key: str = "sk-client-key") -> openai.OpenAI:
        """The official client pointed at this gateway, failing fast: no SDK retries."""
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0, timeout=10)

    def post(self, body: bytes | dict[str, Any], **kwargs: Any) -> httpx.Response:
        """A raw POST to /v1/chat/completions, for what the SDK would refuse to send."""
        if isinstance(body, dict):
            return httpx.post(f"{self.url}/v1/chat/completions", json=body, timeout=10, **kwargs)
        return httpx.post(
            f"{self.url}/v1/chat/completions",
            content=body,
            headers={"content-type": "application/json", **kwargs.pop("headers", {})},
            timeout=10,
            **kwargs,
        )


def metadata_of(answer: Any) -> dict[str, Any]:
    """The `routing_metadata` an SDK answer or chunk carries (the SDK keeps it as an extra)."""
    extra = answer.model_extra or {}
    assert "routing_metadata" in extra, f"no routing_metadata on {answer!r}"
    metadata: dict[str, Any] = extra["routing_metadata"]
    return metadata


def upstream_config(upstream_url: str, **provider: Any) -> dict[str, Any]:
    """One provider `mock` at the given base URL serving the model `test-model`."""
    return {
        **BASE_CONFIG,
        "providers": {
            "mock": {
                "kind": "openai",
                "base_url": upstream_url,
                "api_key": "sk-upstream-secret",
                **provider,
            }
        },
        "models": {
            "test-model": {
                "deployments": [
                    {
                        "provider": "mock",
                        "model": "upstream-model-id",
                        "input_per_mtok": 2.0,
                        "output_per_mtok": 8.0,
                    }
                ]
            }
        },
    }


@pytest.fixture
def gateway_factory() -> Iterator[Callable[[dict[str, Any]], GatewayServer]]:
    started: list[GatewayServer] = []

    def start(config: dict[str, Any]) -> GatewayServer:
        server = GatewayServer(config).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
