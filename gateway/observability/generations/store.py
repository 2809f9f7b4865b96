"""Where finished requests' records are kept for lookup: this process, or Redis."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence

import msgspec

from gateway.accounting import RequestRecord
from gateway.observability.config import GenerationsConfig
from providers.errors import SwitchboardError


class GenerationsUnavailable(SwitchboardError):
    """The shared store could not be read."""

    status = 503
    type = "api_error"
    code = "store_unavailable"


def kept(record: RequestRecord) -> RequestRecord:
    """What is kept of a record: all but admission's internals (budget holds)."""
    return msgspec.structs.replace(record, admitted=None)


class GenerationStore(ABC):
    """`name` makes it an accounts sink: `deliver` keeps every finished request."""

    name = "generations"
    backend = "memory"

    def __init__(self, config: GenerationsConfig, clock: Callable[[], float] = time.time):
        self.config = config
        self.clock = clock

    async def deliver(self, records: Sequence[RequestRecord]) -> None:
        await self.put_many([kept(r) for r in records if r.request_id])

    @abstractmethod
    async def put_many(self, records: Sequence[RequestRecord]) -> None:
        """Keep them for `retention`; a request id seen again replaces the older one."""

    @abstractmethod
    async def get(self, request_id: str) -> RequestRecord | None:
        """None when unknown or expired; raises GenerationsUnavailable when the store
        cannot be read."""

    async def start(self) -> None:  # noqa: B027 - the memory store has no background work
        pass

    async def aclose(self) -> None:  # noqa: B027
        pass


class MemoryGenerationStore(GenerationStore):
    """This replica's own, at most `memory_max_entries`, the oldest given up first (as
    every entry lives `retention`, insertion order is also expiry order)."""

    def __init__(self, config: GenerationsConfig, clock: Callable[[], float] = time.time):
        super().__init__(config, clock)
        self._entries: OrderedDict[str, tuple[float, RequestRecord]] = OrderedDict()

    async def put_many(self, records: Sequence[RequestRecord]) -> None:
        expires = self.clock() + self.config.retention
        entries = self._entries
        for record in records:
            entries.pop(record.request_id, None)
            entries[record.request_id] = (expires, record)
        while len(entries) > self.config.memory_max_entries:
            entries.popitem(last=False)

    async def get(self, request_id: str) -> RequestRecord | None:
        self._expire()
        entry = self._entries.get(request_id)
        return entry[1] if entry is not None else None

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self) -> None:
        now = self.clock()
        entries = self._entries
        while entries:
            expires, _ = next(iter(entries.values()))
            if expires > now:
                return
            entries.popitem(last=False)


def open_generation_store(url: str, config: GenerationsConfig) -> GenerationStore:
    """The store the config's `store:` URL names. Raises ValueError on a Redis URL it
    cannot use; nothing connects here."""
    if url.startswith("memory://"):
        return MemoryGenerationStore(config)
    from gateway.observability.generations.redis_store import RedisGenerationStore

    return RedisGenerationStore(url, config)
