"""The batch of finished requests and the background task that delivers it to sinks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from gateway.accounting.record import RequestAccount, RequestRecord

log = logging.getLogger("switchboard.accounting")

_STATE_KEY = "account"  # where an open account sits in the ASGI scope's state
DELIVER_EVERY = 0.1  # seconds between deliveries: settlement frees budget holds this late
BATCH_LIMIT = 4096  # records that wake the delivery before its time (a burst)


class Sink(Protocol):
    """Something that wants every finished request. `deliver` runs off the request path,
    in batches, in the order the records were made; an exception is logged and the batch
    still goes to the other sinks (a sink that must not lose records keeps its own
    retry, as settlement does)."""

    name: str

    async def deliver(self, records: Sequence[RequestRecord]) -> None: ...


class Accounts:
    def __init__(
        self,
        *,
        every: float = DELIVER_EVERY,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._every = every
        self._wall = wall
        self._clock = clock
        self._sinks: list[Sink] = []
        self._batch: list[RequestRecord] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._delivering = asyncio.Lock()

    # --- the request path ----------------------------------------------------------

    def open(self, scope: Any, endpoint: str) -> RequestAccount:
        """A request's account, kept in its ASGI scope's `state` so that the error
        handler closes it."""
        state = scope.setdefault("state", {})
        account = RequestAccount(
            self, state.get("request_id", ""), endpoint, self._wall(), self._clock
        )
        state[_STATE_KEY] = account
        return account

    @staticmethod
    def current(scope: Any) -> RequestAccount | None:
        account = scope.get("state", {}).get(_STATE_KEY)
        return account if isinstance(account, RequestAccount) else None

    def add(self, record: RequestRecord) -> None:
        self._batch.append(record)
        if len(self._batch) >= BATCH_LIMIT:
            self._wake.set()

    # --- sinks and delivery ----------------------------------------------------------

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="accounting")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()  # what is still batched is delivered at shutdown

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._every)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Deliver what is batched now (tests, shutdown)."""
        async with self._delivering:  # the loop and a caller may flush at once
            batch, self._batch = self._batch, []
            if not batch:
                return
            for sink in self._sinks:
                try:
                    await sink.deliver(batch)
                except Exception:  # one sink's failure is not another's
                    log.exception("accounting sink %s failed on %d records", sink.name, len(batch))
