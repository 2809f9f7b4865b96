"""The store named by the config's `store:` URL."""

from __future__ import annotations

import time
from collections.abc import Callable

from routing.config import MetricsConfig
from routing.store.base import MetricsStore


def open_store(
    url: str,
    config: MetricsConfig | None = None,
    *,
    clock: Callable[[], float] = time.time,
    replica: str | None = None,
) -> MetricsStore:
    """`memory://`, or `redis://`, `rediss://`, `redis+cluster://`, `redis+sentinel://`.
    Nothing connects here: a Redis store connects in `start()` and survives Redis down."""
    if url.startswith("memory://"):
        return MetricsStore(config, clock=clock, replica=replica)
    from routing.store.redis_store import RedisStore

    return RedisStore(url, config, clock=clock, replica=replica)
