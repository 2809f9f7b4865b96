"""The record of one finished request, and the per-request account that produces it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from providers.chat_types import Usage
from providers.errors import SwitchboardError, UpstreamRejectedRequest
from routing.errors import RoutingFailed
from routing.metadata import Attempt, RoutingMetadata

if TYPE_CHECKING:
    from gateway.accounting.book import Accounts

CLIENT_CLOSED = 499  # the status a stream the client left is recorded with (nginx's)


class Admitted(msgspec.Struct, frozen=True, kw_only=True):
    """What admission took for a request, for settlement to charge or give back."""

    hold: str  # the budget reservation's id ("" when no budget applied)
    shared: bool  # taken in the shared store (else in this replica's local fallback)
    usd: float  # the worst case reserved
    nano_usd: int = 0  # the same, exactly as the store holds it (1e-9 USD)
    tokens: int  # tokens admitted against tokens-per-minute limits
    budgets: tuple[str, ...] = ()  # the budget buckets the hold counts in
    token_limits: tuple[tuple[str, int], ...] = ()  # (tpm scope, limit) to settle tokens on


class RequestRecord(msgspec.Struct, kw_only=True):
    """One finished request. `status` is what the client got (499: it left a stream)."""

    request_id: str
    endpoint: str  # e.g. "chat.completions"; an unknown route is its path
    key: str | None  # the gateway key's name (None: `auth: none`, or refused before auth)
    team: str | None
    model: str | None  # the model asked for (the first of `models[]`)
    stream: bool
    status: int
    error_code: str | None  # None on success
    routing_metadata: RoutingMetadata | None  # who served it, when someone did
    usage: Usage | None
    cost_usd: float
    cost_estimated: bool  # usage counted by the gateway: the upstream reported none
    started_at: float  # epoch seconds when the gateway took the request
    duration_ms: float  # until the answer's last byte (or the error) left
    attempts: list[Attempt]  # failed tries, also those of an error answer
    admitted: Admitted | None = None
    replayed: bool = False  # an idempotent replay: served from the store, not charged

    @property
    def provider(self) -> str | None:
        return self.routing_metadata.provider if self.routing_metadata else None


def error_code_of(error: SwitchboardError) -> str:
    """A closed set of codes: an upstream refusal may carry any code the upstream likes."""
    if isinstance(error, UpstreamRejectedRequest):
        return UpstreamRejectedRequest.code
    return error.code


class RequestAccount:
    """Filled in as a request goes along; closed exactly once by one of `succeeded`,
    `failed` or `stream_ended` (later calls are ignored)."""

    __slots__ = (
        "_accounts",
        "_clock",
        "_started",
        "admitted",
        "endpoint",
        "finished",
        "headers",
        "key",
        "model",
        "record",
        "replayed",
        "request_id",
        "started_at",
        "stream",
        "team",
    )

    def __init__(
        self,
        accounts: Accounts,
        request_id: str,
        endpoint: str,
        started_at: float,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._accounts = accounts
        self._clock = clock
        self._started = clock()
        self.request_id = request_id
        self.endpoint = endpoint
        self.started_at = started_at
        self.key: str | None = None
        self.team: str | None = None
        self.model: str | None = None
        self.stream = False
        self.admitted: Admitted | None = None
        self.replayed = False
        # headers every answer to this request carries, errors included (rate limits)
        self.headers: dict[str, str] = {}
        self.finished = False
        self.record: RequestRecord | None = None  # once closed (tracing reads it)

    def succeeded(self, metadata: RoutingMetadata, usage: Usage, status: int = 200) -> None:
        self._close(status, None, metadata, usage, list(metadata.attempts))

    def replayed_answer(self, status: int) -> None:
        """An answer served again from the store (`Idempotency-Key`): nothing dispatched,
        nothing charged."""
        self.replayed = True
        self._close(status, None, None, None, [])

    def answered(self, status: int = 200) -> None:
        """An answer that needed no deployment (a token count): nothing to price."""
        self._close(status, None, None, None, [])

    def failed(self, error: SwitchboardError) -> None:
        attempts = list(error.attempts) if isinstance(error, RoutingFailed) else []
        self._close(error.status, error_code_of(error), None, None, attempts)

    def stream_ended(
        self,
        metadata: RoutingMetadata,
        usage: Usage,
        *,
        error: SwitchboardError | None = None,
        client_left: bool = False,
    ) -> None:
        """A stream's end: complete, failed after it began (`error`), or abandoned by the
        client. It was served in all three cases, so it is charged for what it produced."""
        if client_left:
            status, code = CLIENT_CLOSED, "client_closed_request"
        elif error is not None:
            status, code = error.status, error_code_of(error)
        else:
            status, code = 200, None
        self._close(status, code, metadata, usage, list(metadata.attempts))

    def _close(
        self,
        status: int,
        code: str | None,
        metadata: RoutingMetadata | None,
        usage: Usage | None,
        attempts: list[Attempt],
    ) -> None:
        if self.finished:
            return
        self.finished = True
        cost = metadata.cost if metadata is not None and not self.replayed else None
        self.record = RequestRecord(
            request_id=self.request_id,
            endpoint=self.endpoint,
            key=self.key,
            team=self.team,
            model=self.model,
            stream=self.stream,
            status=status,
            error_code=code,
            routing_metadata=metadata,
            usage=usage,
            cost_usd=cost.usd if cost is not None else 0.0,
            cost_estimated=cost.estimated if cost is not None else False,
            started_at=self.started_at,
            duration_ms=round((self._clock() - self._started) * 1000, 3),
            attempts=attempts,
            admitted=self.admitted,
            replayed=self.replayed,
        )
        self._accounts.add(self.record)
