"""Finished requests' records in the Redis every replica shares (single, cluster or
sentinel): one key each, `<prefix>:generation:<request id>`, holding the record as JSON
and expiring after `retention` (Redis drops it; nothing sweeps).

A delivery's records go in one pipeline, off the request path. While Redis is
unreachable they wait in a bounded queue (the oldest given up first, counted) and go with
the next delivery; until then this replica answers lookups from the queue.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

import msgspec

from gateway.accounting import RequestRecord
from gateway.observability.config import GenerationsConfig
from gateway.observability.generations.store import GenerationStore, GenerationsUnavailable
from routing.store.redis_url import open_client, parse_redis_url

log = logging.getLogger("switchboard.generations")

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(RequestRecord).decode
QUEUE_LIMIT = 100_000  # records kept while Redis is unreachable


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class RedisGenerationStore(GenerationStore):
    backend = "redis"

    def __init__(
        self,
        url: str,
        config: GenerationsConfig,
        *,
        prefix: str = "switchboard",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(config, clock)
        self._prefix = f"{prefix}:generation:"
        self._client = open_client(parse_redis_url(url))
        self._queue: OrderedDict[str, RequestRecord] = OrderedDict()
        self.given_up = 0  # records dropped from a full queue while Redis was down
        self._failing = False

    def key(self, request_id: str) -> str:
        return self._prefix + request_id

    async def put_many(self, records: Sequence[RequestRecord]) -> None:
        queue = self._queue
        for record in records:
            queue.pop(record.request_id, None)
            queue[record.request_id] = record
        while len(queue) > QUEUE_LIMIT:
            queue.popitem(last=False)
            self.given_up += 1
        batch = list(queue.values())
        ttl = max(1, int(self.config.retention * 1000))
        try:
            pipe = self._client.redis.pipeline(transaction=False)
            for record in batch:
                pipe.set(self.key(record.request_id), _encode(record), px=ttl)
            await pipe.execute()
        except Exception as exc:  # unreachable, timed out, failing over: try next delivery
            if not self._failing:
                log.warning("generation store unreachable, records wait: %s", _reason(exc))
            self._failing = True
            return
        self._failing = False
        for record in batch:
            if queue.get(record.request_id) is record:
                del queue[record.request_id]

    async def get(self, request_id: str) -> RequestRecord | None:
        waiting = self._queue.get(request_id)
        if waiting is not None:
            return waiting
        try:
            raw = await self._client.redis.get(self.key(request_id))
        except Exception as exc:
            raise GenerationsUnavailable(
                f"Past requests cannot be read now: the gateway's store is unreachable "
                f"({_reason(exc)}). Retry later."
            ) from None
        if raw is None:
            return None
        try:
            return _decode(raw)
        except msgspec.DecodeError:
            log.warning("ignoring an unreadable generation record %s", request_id)
            return None

    async def aclose(self) -> None:
        await self._client.aclose()
