"""A gateway for the status page's test and screenshots: two models on three mock
upstreams (one of them failing one request in three, so requests have failed tries and
fallbacks), keys in two teams with budgets, an admin key; and a thread sending traffic of
every kind through the official SDK until it is stopped."""

from __future__ import annotations

import hashlib
import itertools
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai

from tests.gateway_server import GatewayServer
from tests.mock_upstream import (
    ComputedReply,
    ErrorReply,
    JSONReply,
    MockUpstream,
    RecordedRequest,
    Reply,
    SSEReply,
)

ADMIN_KEY = "sb-admin-ui-000000000000000000"
KEYS = {
    "search-prod": "sb-search-prod-00000000001",
    "search-batch": "sb-search-batch-0000000002",
    "support-bot": "sb-support-bot-00000000003",
}
HELLO = [{"role": "user", "content": "Summarise the meeting notes in three bullet points."}]
UPSTREAMS = ("fast", "steady", "flaky")


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def upstream_reply(pace: float, fail_every: int = 0) -> ComputedReply:
    """Answers after about `pace` seconds (a stream's first token after half of it); every
    `fail_every`-th request is a 503 instead."""
    count = itertools.count(1)
    jitter = random.Random(7)

    def make(request: RecordedRequest) -> Reply:
        if fail_every and next(count) % fail_every == 0:
            return ErrorReply(503, "overloaded, try again", type="server_error")
        wait = pace * jitter.uniform(0.6, 1.4)
        body = request.json if isinstance(request.json, dict) else {}
        if body.get("stream") is True:
            return SSEReply(first_delay=wait / 2, delay_between=wait / 8)
        return JSONReply(delay=wait)

    return ComputedReply(make)


@contextmanager
def mock_upstreams() -> Iterator[dict[str, MockUpstream]]:
    mocks = {name: MockUpstream().start() for name in UPSTREAMS}
    mocks["fast"].set_default(upstream_reply(0.02))
    mocks["steady"].set_default(upstream_reply(0.06))
    mocks["flaky"].set_default(upstream_reply(0.03, fail_every=3))
    try:
        yield mocks
    finally:
        for mock in mocks.values():
            mock.stop()


def gateway_config(urls: dict[str, str], *, auth: bool = True) -> dict[str, Any]:
    def deployment(provider: str, price: float) -> dict[str, Any]:
        return {
            "provider": provider,
            "model": f"{provider}-model",
            "input_per_mtok": price,
            "output_per_mtok": 4 * price,
        }

    config: dict[str, Any] = {
        "store": "memory://",
        "providers": {
            name: {"kind": "openai", "base_url": url, "api_key": f"sk-up-{name}", "timeout": 5}
            for name, url in urls.items()
        },
        "models": {
            # the flaky one is cheapest: routing tries it first, then falls back
            "chat-small": {"deployments": [deployment("flaky", 0.2), deployment("fast", 0.4)]},
            "chat-large": {"deployments": [deployment("steady", 3.0), deployment("fast", 5.0)]},
        },
        "routing": {
            "strategy": "cost",
            "retries": {"attempts": 1},
            "exploration": {"share": 0.1, "seed": 3},
            "metrics": {"flush": 0.05, "refresh": 0.1},
        },
    }
    if not auth:
        return {**config, "auth": "none"}
    config["admin"] = {"key_sha256": digest(ADMIN_KEY)}
    config["governance"] = {"budget_usd": {"daily": 5}}
    config["auth"] = {
        "teams": [
            {"name": "search", "budget_usd": {"daily": 0.5, "monthly": 10}},
            {"name": "support", "budget_usd": {"daily": 0.2}},
        ],
        "keys": [
            {
                "name": "search-prod",
                "key_sha256": digest(KEYS["search-prod"]),
                "team": "search",
                "budget_usd": {"daily": 0.05},
            },
            {"name": "search-batch", "key_sha256": digest(KEYS["search-batch"]), "team": "search"},
            {"name": "support-bot", "key_sha256": digest(KEYS["support-bot"]), "team": "support"},
        ],
    }
    return config


class Traffic:
    """Requests round robin over keys, models and streaming, from a thread, until `stop`."""

    def __init__(self, gateway: GatewayServer, *, keyed: bool = True) -> None:
        keys = KEYS if keyed else {"anyone": "unused"}
        self._clients = {name: gateway.sdk(key) for name, key in keys.items()}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sent = 0
        self.errors: list[str] = []

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        plan = itertools.cycle(
            itertools.product(self._clients.values(), ("chat-small", "chat-large"), (False, True))
        )
        while not self._stop.is_set():
            client, model, stream = next(plan)
            try:
                if stream:
                    for _ in client.chat.completions.create(
                        model=model, messages=HELLO, max_tokens=50, stream=True
                    ):
                        pass
                else:
                    client.chat.completions.create(model=model, messages=HELLO, max_tokens=50)
            except openai.APIError as exc:  # shown on the page as they are; kept for a look
                self.errors.append(repr(exc))
            self.sent += 1
