"""A gateway with everything the dashboards and alerts show (keys and teams with budgets,
a rate-limited key, a flaky deployment that causes retries and fallbacks, streams), and
traffic to fill them. Used by the Prometheus test and by the dashboard screenshots."""

from __future__ import annotations

import hashlib
import itertools
import time
from typing import Any

import openai

from tests.gateway_server import GatewayServer

KEYS = {
    "search-prod": "sk-search-prod-0001",
    "search-batch": "sk-search-batch-0002",
    "support-bot": "sk-support-bot-0003",
    "limited": "sk-limited-0004",
}
HELLO = [{"role": "user", "content": "Summarise the meeting notes in three bullet points."}]


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _simulated(**extra: Any) -> dict[str, Any]:
    return {"kind": "simulated", "completion_tokens": 40, "seed": 7, **extra}


def gateway_config() -> dict[str, Any]:
    return {
        "auth": {
            "teams": [
                {"name": "search", "budget_usd": {"monthly": 40}},
                {"name": "support", "budget_usd": {"daily": 1}},
            ],
            "keys": [
                {
                    "name": "search-prod",
                    "key_sha256": _digest(KEYS["search-prod"]),
                    "team": "search",
                    "budget_usd": {"daily": 2},
                },
                {
                    "name": "search-batch",
                    "key_sha256": _digest(KEYS["search-batch"]),
                    "team": "search",
                },
                {
                    "name": "support-bot",
                    "key_sha256": _digest(KEYS["support-bot"]),
                    "team": "support",
                },
                {"name": "limited", "key_sha256": _digest(KEYS["limited"]), "rpm": 1},
            ],
        },
        "governance": {"budget_usd": {"daily": 50}},
        "providers": {
            # cheapest, fails two tries in five: retries, then fallbacks to the others
            "flaky": _simulated(ttft_ms=60, tokens_per_second=900, failure_rate=0.4),
            "steady": _simulated(ttft_ms=120, tokens_per_second=500),
            "premium": _simulated(ttft_ms=40, tokens_per_second=1500),
        },
        "models": {
            "chat-small": {
                "deployments": [
                    {
                        "provider": "flaky",
                        "model": "small-a",
                        "input_per_mtok": 0.2,
                        "output_per_mtok": 0.6,
                    },
                    {
                        "provider": "steady",
                        "model": "small-b",
                        "input_per_mtok": 0.3,
                        "output_per_mtok": 0.9,
                    },
                ]
            },
            "chat-large": {
                "deployments": [
                    {
                        "provider": "premium",
                        "model": "large-a",
                        "input_per_mtok": 3.0,
                        "output_per_mtok": 15.0,
                    },
                    {
                        "provider": "steady",
                        "model": "large-b",
                        "input_per_mtok": 4.0,
                        "output_per_mtok": 16.0,
                    },
                ]
            },
        },
        "routing": {
            "strategy": "cost",
            "retries": {"attempts": 2, "backoff_initial": 0.01, "backoff_max": 0.02},
            "exploration": {"share": 0.1, "seed": 3},
            "metrics": {"flush": 0.05, "refresh": 0.1},
        },
    }


def client(gateway: GatewayServer, key: str) -> openai.OpenAI:
    return gateway.sdk(KEYS[key])


def drive(gateway: GatewayServer, seconds: float) -> dict[str, int]:
    """Requests of every kind, round robin, for `seconds`: what was answered and refused."""
    clients = {name: client(gateway, name) for name in KEYS}
    plan = itertools.cycle(
        [
            ("search-prod", "chat-small", False),
            ("search-batch", "chat-small", True),
            ("support-bot", "chat-large", False),
            ("search-prod", "chat-large", True),
            ("support-bot", "chat-small", True),
            ("limited", "chat-small", False),  # one a minute: the rest are refused
        ]
    )
    seen = {"answered": 0, "refused": 0, "failed": 0}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        key, model, stream = next(plan)
        try:
            if stream:
                for _ in clients[key].chat.completions.create(
                    model=model, messages=HELLO, stream=True
                ):
                    pass
            else:
                clients[key].chat.completions.create(model=model, messages=HELLO)
            seen["answered"] += 1
        except openai.RateLimitError:
            seen["refused"] += 1
        except openai.APIError:
            seen["failed"] += 1
    return seen
