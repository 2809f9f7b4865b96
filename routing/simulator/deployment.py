"""A deployment that answers as the scenario's current phase scripts it: latency with a
log-normal spread, a share of failures, slower answers past its capacity, 429s past its
vendor limits. Every try is written to the trace as it starts and as it ends."""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from collections.abc import AsyncGenerator, Callable

import msgspec

from providers.base import Provider, ProviderCall, ProviderResponse, StreamChunk
from providers.chat_types import Usage
from providers.errors import error_for_status
from routing.simulator.scenario import DEFAULT_PROFILE

_ANSWER = b'{"object":"chat.completion","choices":[]}'  # routing never reads the body
_CHUNK = b'{"object":"chat.completion.chunk","choices":[]}'
_MINUTE = 60.0


class Try(msgspec.Struct, kw_only=True):
    """One upstream try, as the deployment saw it."""

    request_id: str
    deployment: str
    started: float  # virtual seconds
    ended: float | None = None
    status: int = 200  # the HTTP status it answered


class ScriptedProvider(Provider):
    def __init__(self, name: str, seed: int, clock: Callable[[], float], tries: list[Try]) -> None:
        super().__init__(name)
        self.profile = DEFAULT_PROFILE
        self._draw = random.Random(f"{seed}:{name}")
        self._clock = clock
        self._tries = tries
        self._starts: deque[float] = deque()  # this minute's tries, for `rpm_limit`
        self.in_flight = 0

    def _value(self, field: str) -> float:
        value = getattr(self.profile, field)
        return float(value if value is not None else getattr(DEFAULT_PROFILE, field))

    def _refused(self, now: float) -> int | None:
        """The 429 a vendor limit answers with, if one is reached."""
        profile = self.profile
        while self._starts and self._starts[0] <= now - _MINUTE:
            self._starts.popleft()
        if profile.rpm_limit is not None and len(self._starts) >= profile.rpm_limit:
            return 429
        if profile.concurrency_limit is not None and self.in_flight >= profile.concurrency_limit:
            return 429
        return None

    def _latency(self) -> float:
        """Seconds to the whole answer for a try starting now."""
        spread = self._value("jitter")
        # a log-normal with the profile's mean: exp(N(-s^2/2, s))
        factor = math.exp(self._draw.gauss(-spread * spread / 2, spread)) if spread else 1.0
        load = 1.0
        if self.profile.capacity is not None:
            load = max(1.0, (self.in_flight + 1) / self.profile.capacity)
        return self._value("latency_ms") / 1000 * factor * load

    async def _begin(self, call: ProviderCall) -> tuple[Try, float]:
        """Start a try: fail it as scripted (raises), else return how long it takes."""
        now = self._clock()
        attempt = Try(request_id=call.request_id, deployment=self.name, started=now)
        self._tries.append(attempt)
        refused = self._refused(now)
        if refused is None:
            self._starts.append(now)
        if refused is None and self._draw.random() < self._value("error_rate"):
            refused = int(self._value("error_status"))
        if refused is not None:
            attempt.status = refused
            await asyncio.sleep(self._value("error_latency_ms") / 1000)
            attempt.ended = self._clock()
            raise error_for_status(
                refused,
                f"{self.name}: scripted failure (HTTP {refused})",
                provider=self.name,
                retry_after=1.0 if refused == 429 else None,
            )
        return attempt, self._latency()

    def _usage(self, call: ProviderCall) -> Usage:
        completion = int(self._value("completion_tokens"))
        limit = call.request.output_limit
        if limit is not None:
            completion = min(completion, limit)
        prompt = call.request.estimated_prompt_tokens()
        return Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )

    async def complete(self, call: ProviderCall) -> ProviderResponse:
        self.in_flight += 1
        try:
            attempt, latency = await self._begin(call)
            try:
                await asyncio.sleep(latency)
            finally:
                attempt.ended = self._clock()
            return ProviderResponse(body=_ANSWER, usage=self._usage(call))
        finally:
            self.in_flight -= 1

    async def stream(self, call: ProviderCall) -> AsyncGenerator[StreamChunk, None]:
        self.in_flight += 1
        try:
            attempt, latency = await self._begin(call)
            ttft = self.profile.ttft_ms
            first = min(latency, ttft / 1000 if ttft is not None else latency / 4)
            try:
                await asyncio.sleep(first)
                yield StreamChunk(data=_CHUNK, has_output=True)
                await asyncio.sleep(latency - first)
                yield StreamChunk(data=_CHUNK, usage=self._usage(call), usage_only=True)
            finally:
                attempt.ended = self._clock()
        finally:
            self.in_flight -= 1
