"""Responses the gateway keeps, so that `previous_response_id` can continue them.

A response served through the chat path is kept whole (the conversation's items: what
the model was given, then what it answered); one a native upstream served is kept only
as a marker naming that provider, since the upstream holds the conversation itself.

`put()` never waits: the memory store inserts at once, the Redis store hands the write to
a background task that sends what has gathered in one pipeline. `get()` is the one read
a request that names a previous response makes.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable

import msgspec
from msgspec import Raw

from gateway.ingress.responses.config import ResponsesConfig
from providers.errors import SwitchboardError


class StoredResponse(msgspec.Struct, kw_only=True):
    id: str
    owner: str  # the gateway key that created it: no other key may continue it
    created_at: float  # epoch seconds
    provider: str | None = None  # a native response: only this provider holds its state
    items: list[Raw] = msgspec.field(default_factory=list)  # the conversation, in order

    def size(self) -> int:
        """About the bytes it takes (what memory bounds are counted in)."""
        return 128 + len(self.id) + len(self.owner) + sum(len(item) for item in self.items)


class ResponseStoreUnavailable(SwitchboardError):
    """The shared store could not be read: a response to continue cannot be found."""

    status = 503
    type = "api_error"
    code = "store_unavailable"


class ResponseStore(ABC):
    backend: str = "memory"

    def __init__(self, config: ResponsesConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock

    @abstractmethod
    async def get(self, response_id: str) -> StoredResponse | None:
        """The response, or None when it is unknown or expired. Raises
        ResponseStoreUnavailable when the store cannot be read."""

    @abstractmethod
    def put(self, response: StoredResponse) -> None:
        """Keep it for `retention` seconds; returns at once, without I/O."""

    async def start(self) -> None:  # noqa: B027 - the memory store has no background work
        """Background work, if the store has any."""

    async def aclose(self) -> None:  # noqa: B027
        """Write what is still waiting, then release connections."""


class MemoryResponseStore(ResponseStore):
    """This replica's own: bounded in bytes, the oldest evicted first. As every entry
    lives `retention` seconds, insertion order is also expiry order."""

    def __init__(self, config: ResponsesConfig, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(config, clock=clock)
        self._entries: OrderedDict[str, tuple[float, StoredResponse, int]] = OrderedDict()
        self._bytes = 0
        self.evicted = 0  # responses given up for room before their time

    def put(self, response: StoredResponse) -> None:
        self._forget(response.id)
        size = response.size()
        self._entries[response.id] = (self.clock() + self.config.retention, response, size)
        self._bytes += size
        self._expire()
        while self._bytes > self.config.memory_max_bytes and len(self._entries) > 1:
            oldest = next(iter(self._entries))
            self._forget(oldest)
            self.evicted += 1

    async def get(self, response_id: str) -> StoredResponse | None:
        self._expire()
        entry = self._entries.get(response_id)
        return entry[1] if entry is not None else None

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def _forget(self, response_id: str) -> None:
        entry = self._entries.pop(response_id, None)
        if entry is not None:
            self._bytes -= entry[2]

    def _expire(self) -> None:
        now = self.clock()
        while self._entries:
            oldest, (expires, _, _) = next(iter(self._entries.items()))
            if expires > now:
                return
            self._forget(oldest)
