"""The sender: `concurrency` workers posting chat completions until told to stop, each
answer reduced to an `Outcome` and added to the tally."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import msgspec

from gateway.loadgen.options import Settings
from gateway.loadgen.tally import Outcome, Tally
from providers.sse import SSEDecoder

CHAT_PATH = "/v1/chat/completions"
NO_CONNECTION = "no connection"
TIMEOUT = "timeout"
# after a failure to connect, a worker pauses so a gateway that went away is not spun on
_TRANSPORT_PAUSE_S = 0.2


# --- what we read of the answers: only the fields the tally needs -------------------


class _Cost(msgspec.Struct):
    usd: float = 0.0


class _Attempt(msgspec.Struct):
    provider: str


class _Metadata(msgspec.Struct):
    provider: str
    routing_strategy: str | None = None
    cost: _Cost = msgspec.field(default_factory=_Cost)
    attempts: list[_Attempt] = msgspec.field(default_factory=list)


class _Error(msgspec.Struct):
    code: str | None = None


class _Answer(msgspec.Struct):
    """A JSON answer, an error envelope, or the closing event of a stream."""

    routing_metadata: _Metadata | None = None
    error: _Error | None = None


class _Deployment(msgspec.Struct):
    provider: str


class _Model(msgspec.Struct):
    deployments: list[_Deployment] = msgspec.field(default_factory=list)


_answer_decoder = msgspec.json.Decoder(_Answer)


class Unreachable(Exception):
    """No HTTP answer at all from the gateway."""


def request_body(settings: Settings) -> bytes:
    body: dict[str, object] = {
        "model": settings.model,
        "messages": [{"role": "user", "content": settings.prompt}],
    }
    if settings.max_tokens is not None:
        body["max_tokens"] = settings.max_tokens
    if settings.strategy is not None:
        body["routing"] = {"strategy": settings.strategy}
    if settings.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return msgspec.json.encode(body)


def headers_for(settings: Settings) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if settings.api_key:
        headers["authorization"] = f"Bearer {settings.api_key}"
    return headers


async def known_providers(client: httpx.AsyncClient, model: str) -> list[str]:
    """The providers the gateway lists for the model, in config order; also the check
    that the gateway is there at all. Any answer other than the listing gives []."""
    try:
        response = await client.get(f"/v1/models/{model}")
    except httpx.TransportError as exc:
        raise Unreachable(str(exc) or type(exc).__name__) from exc
    if response.status_code != 200:
        return []
    try:
        listing = msgspec.json.decode(response.content, type=_Model)
    except msgspec.MsgspecError:
        return []
    return list(dict.fromkeys(d.provider for d in listing.deployments))


def outcome_of(status: int, body: bytes, finished_at: float, latency_ms: float) -> Outcome:
    """An answer's body (or a stream's last event before `[DONE]`) as an outcome."""
    try:
        answer = _answer_decoder.decode(body)
    except msgspec.MsgspecError:
        return Outcome(finished_at=finished_at, latency_ms=latency_ms, error=f"{status} bad body")
    metadata = answer.routing_metadata
    if status == 200 and answer.error is None and metadata is not None:
        return Outcome(
            finished_at=finished_at,
            latency_ms=latency_ms,
            provider=metadata.provider,
            cost_usd=metadata.cost.usd,
            strategy=metadata.routing_strategy,
            failed_attempts=tuple(a.provider for a in metadata.attempts),
        )
    code = answer.error.code if answer.error is not None else None
    label = "stream error" if status == 200 else str(status)
    return Outcome(
        finished_at=finished_at,
        latency_ms=latency_ms,
        error=f"{label} {code}" if code else label,
    )


async def _streamed_tail(response: httpx.Response) -> bytes | None:
    """The last event before `[DONE]`, or None if the stream ended without `[DONE]`."""
    decoder = SSEDecoder()
    last = b""
    async for block in response.aiter_bytes():
        for event in decoder.feed_block(block):
            if event.data == b"[DONE]":
                return last
            last = event.data
    return None


class Traffic:
    """Workers that send until `stop()`: at the deadline, once `requests` have been sent, or
    on Ctrl-C (which also abandons the requests in flight)."""

    def __init__(
        self,
        settings: Settings,
        client: httpx.AsyncClient,
        tally: Tally,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._settings = settings
        self._client = client
        self._tally = tally
        self._clock = clock
        self._body = request_body(settings)
        self._headers = headers_for(settings)
        self._started = clock()
        self._issued = 0
        self._stopping = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []

    def elapsed(self) -> float:
        return self._clock() - self._started

    def stop(self) -> None:
        """Send no more; the requests in flight still end and count."""
        self._stopping.set()

    def interrupt(self) -> None:
        """Send no more and abandon the requests in flight (Ctrl-C)."""
        self.stop()
        for worker in self._workers:
            worker.cancel()

    async def run(self) -> None:
        self._started = self._clock()
        self._workers = [
            asyncio.create_task(self._worker()) for _ in range(self._settings.concurrency)
        ]
        duration = self._settings.duration_s
        deadline = asyncio.get_running_loop().call_later(duration, self.stop) if duration else None
        try:
            results = await asyncio.gather(*self._workers, return_exceptions=True)
        finally:
            if deadline is not None:
                deadline.cancel()
        for result in results:
            # a cancelled worker was abandoned on purpose; anything else is a bug to show
            if isinstance(result, Exception):
                raise result

    def _may_send(self) -> bool:
        limit = self._settings.requests
        return not self._stopping.is_set() and (limit is None or self._issued < limit)

    async def _worker(self) -> None:
        while self._may_send():
            self._issued += 1
            outcome = await self._send_one()
            self._tally.add(outcome)
            if outcome.error in (NO_CONNECTION, TIMEOUT):
                await asyncio.sleep(_TRANSPORT_PAUSE_S)

    async def _send_one(self) -> Outcome:
        sent = self._clock()

        def ended(status: int, body: bytes) -> Outcome:
            now = self._clock()
            return outcome_of(status, body, now - self._started, (now - sent) * 1000)

        def failed(error: str) -> Outcome:
            now = self._clock()
            return Outcome(
                finished_at=now - self._started, latency_ms=(now - sent) * 1000, error=error
            )

        headers = self._headers
        try:
            if not self._settings.stream:
                response = await self._client.post(CHAT_PATH, content=self._body, headers=headers)
                return ended(response.status_code, response.content)
            request = self._client.build_request(
                "POST", CHAT_PATH, content=self._body, headers=headers
            )
            response = await self._client.send(request, stream=True)
            try:
                if response.status_code != 200:
                    return ended(response.status_code, await response.aread())
                tail = await _streamed_tail(response)
            finally:
                await response.aclose()
            return failed("stream cut") if tail is None else ended(200, tail)
        except httpx.TimeoutException:
            return failed(TIMEOUT)
        except httpx.ConnectError:
            return failed(NO_CONNECTION)
        except httpx.TransportError as exc:
            return failed(type(exc).__name__)
