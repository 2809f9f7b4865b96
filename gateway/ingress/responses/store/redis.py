"""Kept responses in the Redis every replica shares (single, cluster or sentinel).

One key per response, `<prefix>:response:<id>`, holding the `StoredResponse` as JSON and
expiring after `retention` (Redis drops it, nothing sweeps). A response is written by a
background task, never on a request's path: `put()` queues it and wakes the task, which
sends everything queued meanwhile in one pipeline. Until Redis has it, this replica
answers `get()` from the queue, so a client continuing a response on the same replica
never misses it. While Redis is unreachable the queue waits (bounded by
`pending_max_bytes`, the oldest given up first) and the task tries again each second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

import msgspec

from gateway.ingress.responses.config import ResponsesConfig
from gateway.ingress.responses.store.base import (
    ResponseStore,
    ResponseStoreUnavailable,
    StoredResponse,
)
from routing.store.redis_url import open_client, parse_redis_url

log = logging.getLogger("switchboard.responses")

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(StoredResponse).decode
RETRY_AFTER_FAILURE = 1.0  # seconds between write attempts while Redis is unreachable


class RedisResponseStore(ResponseStore):
    backend = "redis"

    def __init__(
        self,
        url: str,
        config: ResponsesConfig,
        *,
        prefix: str = "switchboard",
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Parses the URL (ValueError if unusable); nothing connects before first use."""
        super().__init__(config, clock=clock)
        self._prefix = f"{prefix}:response:"
        self._client = open_client(parse_redis_url(url))
        # written in the order queued; the newest version of a response wins
        self._pending: OrderedDict[str, StoredResponse] = OrderedDict()
        self._pending_bytes = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.given_up = 0  # responses never written: the queue overflowed during an outage

    def key(self, response_id: str) -> str:
        return self._prefix + response_id

    # --- the request path ----------------------------------------------------------

    def put(self, response: StoredResponse) -> None:
        previous = self._pending.pop(response.id, None)
        if previous is not None:
            self._pending_bytes -= previous.size()
        self._pending[response.id] = response
        self._pending_bytes += response.size()
        while self._pending_bytes > self.config.pending_max_bytes and len(self._pending) > 1:
            _, oldest = self._pending.popitem(last=False)
            self._pending_bytes -= oldest.size()
            self.given_up += 1
            log.warning("response store queue full: response %s not kept", oldest.id)
        self._wake.set()

    async def get(self, response_id: str) -> StoredResponse | None:
        waiting = self._pending.get(response_id)
        if waiting is not None:
            return waiting
        try:
            raw = await self._client.redis.get(self.key(response_id))
        except Exception as exc:  # unreachable, timed out, failing over
            log.warning("response store unreachable: %s", _reason(exc))
            raise ResponseStoreUnavailable(
                "The stored response cannot be read now: the gateway's store is "
                "unreachable. Retry later, or send the conversation in `input`.",
                param="previous_response_id",
            ) from None
        if raw is None:
            return None
        try:
            return _decode(raw)
        except msgspec.DecodeError:
            log.warning("ignoring an unreadable stored response %s", response_id)
            return None

    # --- the background writer -----------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="responses-store")

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not await self.flush():
                await asyncio.sleep(RETRY_AFTER_FAILURE)
                self._wake.set()

    async def flush(self) -> bool:
        """Write everything queued; False if Redis did not take it (it stays queued)."""
        if not self._pending:
            return True
        batch = list(self._pending.values())
        ttl = max(1, int(self.config.retention * 1000))
        try:
            pipe = self._client.redis.pipeline(transaction=False)
            for response in batch:
                pipe.set(self.key(response.id), _encode(response), px=ttl)
            await pipe.execute()
        except Exception as exc:
            log.warning("response store write failed, will retry: %s", _reason(exc))
            return False
        for response in batch:
            # one queued again since (a newer version) waits for the next flush
            if self._pending.get(response.id) is response:
                del self._pending[response.id]
                self._pending_bytes -= response.size()
        return True

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self.flush()  # what is still queued is not lost at shutdown
        await self._client.aclose()


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
