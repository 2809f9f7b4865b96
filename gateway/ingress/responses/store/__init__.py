"""Where the gateway keeps Responses API answers: memory, or the shared Redis."""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.ingress.responses.config import ResponsesConfig
from gateway.ingress.responses.store.base import (
    MemoryResponseStore,
    ResponseStore,
    ResponseStoreUnavailable,
    StoredResponse,
)

__all__ = [
    "MemoryResponseStore",
    "ResponseStore",
    "ResponseStoreUnavailable",
    "StoredResponse",
    "open_response_store",
]


def open_response_store(
    url: str, config: ResponsesConfig, *, clock: Callable[[], float] = time.time
) -> ResponseStore:
    """The store the config's `store:` URL names (the same as the metrics store's).
    Raises ValueError on a Redis URL it cannot use; nothing connects here."""
    if url.startswith("memory://"):
        return MemoryResponseStore(config, clock=clock)
    from gateway.ingress.responses.store.redis import RedisResponseStore

    return RedisResponseStore(url, config, clock=clock)
