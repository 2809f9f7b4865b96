"""`Idempotency-Key`, Stripe-style, for non-streaming requests.

The first request with a key (per gateway key) marks it *started*, atomically; its answer
is stored as *finished* for `governance.idempotency_ttl` (24 h). The same key again:
- with the same canonical body (JSON with sorted keys), finished: the stored answer is
  replayed with `Idempotent-Replayed: true`, and nothing is charged or dispatched;
- with the same body while the first is still running: 409 `idempotency_key_in_use`
  and `Retry-After: 1` (no waiting: a client that retried after a timeout gets a clear
  answer at once, and tries again);
- with another body: 409 `idempotency_key_in_use`.
An error answer releases the key, so the client may retry. A stream ignores the key and
says so (`x-switchboard-idempotency: ignored_streaming`). When the store cannot be reached
the request goes on without idempotency (`x-switchboard-idempotency: unavailable`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import msgspec

from gateway.governance.store import GovernanceStore
from providers.errors import InvalidRequest, SwitchboardError

log = logging.getLogger("switchboard.governance")

HEADER = "idempotency-key"
STATUS_HEADER = "x-switchboard-idempotency"
MAX_KEY_LENGTH = 255
_any = msgspec.json.Decoder()
_sorted = msgspec.json.Encoder(order="sorted")


class KeyInUse(SwitchboardError):
    status = 409
    type = "invalid_request_error"
    code = "idempotency_key_in_use"


class StoredAnswer(msgspec.Struct, kw_only=True):
    fingerprint: str  # SHA-256 of the canonical body
    finished: bool = False
    status: int = 0
    headers: dict[str, str] = {}
    body: bytes = b""


class Replay(msgspec.Struct, kw_only=True):
    status: int
    headers: dict[str, str]
    body: bytes


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(StoredAnswer).decode


def fingerprint(body: bytes) -> str:
    """The same JSON, however its keys were ordered or spaced, has the same fingerprint."""
    try:
        canonical = _sorted.encode(_any.decode(body))
    except (msgspec.DecodeError, RecursionError):
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


class Claim:
    """A started key: finish it with the answer, or release it on an error."""

    def __init__(self, keeper: Idempotency, slot: str, print_: str) -> None:
        self._keeper = keeper
        self._slot = slot
        self._fingerprint = print_

    def finish(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        answer = StoredAnswer(
            fingerprint=self._fingerprint,
            finished=True,
            status=status,
            headers=dict(headers),
            body=body,
        )
        self._keeper.later(
            self._keeper.store.idempotency_put(self._slot, _encode(answer), self._keeper.ttl_ms)
        )

    def release(self) -> None:
        self._keeper.later(self._keeper.store.idempotency_delete(self._slot))


class Idempotency:
    def __init__(self, store: GovernanceStore, ttl: float, running: float) -> None:
        """`ttl`: how long an answer can be replayed; `running`: how long a started key
        stays claimed if its replica dies before finishing it."""
        self.store = store
        self.ttl_ms = int(ttl * 1000)
        self._running_ms = int(running * 1000)
        self._pending: set[asyncio.Task[Any]] = set()

    async def begin(
        self, scope: str, headers: Mapping[str, str], body: bytes, *, stream: bool
    ) -> tuple[Claim | Replay | None, dict[str, str]]:
        """(what to do, headers the answer carries). None: no key, or not applicable."""
        key = headers.get(HEADER)
        if key is None:
            return None, {}
        if stream:
            return None, {STATUS_HEADER: "ignored_streaming"}
        if not key or len(key) > MAX_KEY_LENGTH:
            raise InvalidRequest(
                f"The Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters long.",
                param="Idempotency-Key",
            )
        slot = f"idem:{scope}:{hashlib.sha256(key.encode()).hexdigest()}"
        print_ = fingerprint(body)
        started = _encode(StoredAnswer(fingerprint=print_))
        try:
            existing = await self.store.idempotency_claim(slot, started, self._running_ms)
        except Exception as exc:  # the store is down: serve without idempotency
            log.warning("idempotency unavailable, serving without it: %s", exc)
            return None, {STATUS_HEADER: "unavailable"}
        if existing is None:
            return Claim(self, slot, print_), {STATUS_HEADER: "stored"}
        answer = _decode(existing)
        if answer.fingerprint != print_:
            raise KeyInUse(
                "This Idempotency-Key was used with a different request body.",
                param="Idempotency-Key",
            )
        if not answer.finished:
            raise KeyInUse(
                "A request with this Idempotency-Key is still in progress: retry when it "
                "has finished.",
                param="Idempotency-Key",
                headers={"retry-after": "1"},
            )
        replay = Replay(
            status=answer.status,
            headers={**answer.headers, "idempotent-replayed": "true", STATUS_HEADER: "replayed"},
            body=answer.body,
        )
        return replay, {}

    def later(self, work: Any) -> None:
        """Off the request path, but kept until done (and awaited at shutdown)."""
        task = asyncio.ensure_future(work)
        self._pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("idempotency write failed: %s", task.exception())

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
