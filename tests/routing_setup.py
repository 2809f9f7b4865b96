"""Configs for routing tests: one model served by several mock upstreams (each an
OpenAI-wire provider of its own), with the routing knobs turned for fast learning."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

# fast learning: the snapshot is at most ~0.1 s behind the traffic
FAST_METRICS = {"flush": 0.03, "refresh": 0.05}
HELLO: list[Any] = [{"role": "user", "content": "hi"}]  # SDK and raw bodies alike
# request parts that need a capability
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
IMAGE_MESSAGE = {
    "role": "user",
    "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ],
}


class MovableClock:
    """The machine's wall clock plus an offset a test moves on: a gateway given it lives
    through a 30 s cooldown in an instant, and nothing it asserts races the machine."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def wait_until(check: Callable[[], bool], timeout: float) -> float:
    """Poll until `check()` holds; the seconds it took. Fails the test past `timeout`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "not within the time allowed"
        time.sleep(0.02)
    return time.monotonic() - started


def routed_config(
    models: dict[str, list[tuple[str, float]]],
    urls: dict[str, str],
    *,
    strategy: str = "cost",
    store: str = "memory://",
    **routing: Any,
) -> dict[str, Any]:
    """`models`: canonical name → [(provider, input price per Mtok)] (output = 2 * input);
    `urls`: provider → mock base URL. Exploration is off unless `routing` turns it on."""
    routing.setdefault("exploration", {"share": 0.0})
    routing.setdefault("retries", {"attempts": 1})
    routing.setdefault("metrics", FAST_METRICS)
    return {
        "auth": "none",
        "store": store,
        "providers": {
            name: {"kind": "openai", "base_url": url, "api_key": f"sk-{name}", "timeout": 5}
            for name, url in urls.items()
        },
        "models": {
            model: {
                "deployments": [
                    {
                        "provider": provider,
                        "model": f"{provider}-{model}",
                        "input_per_mtok": price,
                        "output_per_mtok": 2 * price,
                    }
                    for provider, price in deployments
                ]
            }
            for model, deployments in models.items()
        },
        "routing": {"strategy": strategy, "deadline": 30, **routing},
    }
