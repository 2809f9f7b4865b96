"""Dispatch: try the plan's deployments in order within one deadline, retrying a
transient failure on the same deployment (tenacity: exponential backoff with jitter, or
the upstream's Retry-After when it is short), then falling back on the next; every try's
outcome goes to the store and every failure to `attempts`.

Upstream 400-class rejections of the request itself are returned at once: any other
deployment would refuse it too. Our own key refused (401/403) opens that deployment's
circuit and falls back.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import msgspec
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
)
from tenacity.stop import stop_base

from providers.errors import ProviderError, UpstreamRateLimited, UpstreamTimeout
from routing.config import RetryConfig, RoutingConfig
from routing.deployments import NO_LIMITS
from routing.errors import RoutingFailed
from routing.failure_log import log_failed_try
from routing.health import Availability, HealthBoard
from routing.limits import LIMIT_REASONS, limit_reached
from routing.metadata import Attempt
from routing.plan import Candidate, Plan
from routing.stats import Outcome
from routing.store.base import MetricsStore

T = TypeVar("T")
# skipped for one of these: the answer is 429 with Retry-After
_RATE_LIMITED = LIMIT_REASONS | {"rate limited"}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


class Served(Generic[T]):
    """The try that succeeded."""

    def __init__(self, candidate: Candidate, result: T, started: float, probe: bool) -> None:
        self.candidate = candidate
        self.result = result
        self.started = started  # monotonic clock
        self.probe = probe  # it was the half-open circuit's probe


class _Backoff:
    """Exponential backoff with jitter, but never shorter than a Retry-After. `later`:
    tenacity numbers its tries from the second one (the first runs outside it), so its
    first wait is the sequence's second. The jitter comes from the router's random
    source (not tenacity's global one), so a seeded router backs off the same each run."""

    def __init__(self, retries: RetryConfig, draw: random.Random, *, later: bool = False) -> None:
        self._initial = retries.backoff_initial * (2 if later else 1)
        self._max = retries.backoff_max
        self._jitter = retries.backoff_initial
        self._draw = draw

    def __call__(self, state: RetryCallState) -> float:
        exponential = self._initial * 2.0 ** min(state.attempt_number - 1, 64)
        wait = min(self._max, exponential + self._draw.uniform(0, self._jitter))
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, UpstreamRateLimited) and error.retry_after is not None:
            wait = max(wait, error.retry_after)
        return wait

    def first(self, retrying: AsyncRetrying, error: ProviderError) -> float:
        """The wait after the first try (outside `retrying`) failed with `error`."""
        state = RetryCallState(retrying, None, (), {})
        state.set_exception((type(error), error, error.__traceback__))
        return self(state)


class _PastDeadline(stop_base):
    """Stop when the wait before the next try would run into the deadline."""

    def __init__(self, deadline: float, clock: Callable[[], float]) -> None:
        self._deadline = deadline
        self._clock = clock

    def __call__(self, state: RetryCallState) -> bool:
        return self._clock() + (state.upcoming_sleep or 0.0) >= self._deadline


class _Tries(Generic[T]):
    """One deployment's tries within a request: what each needs, and whether another
    may follow the last failure."""

    def __init__(
        self,
        candidate: Candidate,
        call: Callable[[Candidate], Awaitable[T]],
        deadline: float,
        attempts: list[Attempt],
        *,
        probe: bool,
        keep_in_flight: bool,
        retry_after_cap: float,
        retry: bool = True,
    ) -> None:
        self.candidate = candidate
        self.call = call
        self.deadline = deadline
        self.attempts = attempts  # the request's failed tries, every deployment's
        self.probe = probe  # the half-open circuit's probe
        self.keep_in_flight = keep_in_flight  # a stream: it stays in flight after its first chunk
        self._cap = retry_after_cap
        self._retry = retry
        self.opened = False  # the last failure opened the circuit

    def may_retry(self, error: BaseException) -> bool:
        if not self._retry or not isinstance(error, ProviderError):
            return False
        if not error.retryable or self.opened:
            return False
        if isinstance(error, UpstreamRateLimited):
            return error.retry_after is not None and error.retry_after <= self._cap
        return True


class Dispatcher:
    def __init__(
        self,
        store: MetricsStore,
        health: HealthBoard,
        config: RoutingConfig,
        clock: Callable[[], float],
        draw: random.Random | None = None,
        on_failure: Callable[[str, float], None] | None = None,
    ) -> None:
        """`on_failure(deployment, now)`: told of every failed try as it happens."""
        self._on_failure = on_failure
        self._store = store
        self._health = health
        self._config = config
        self._clock = clock
        self._draw = draw or random.Random()

    async def run(
        self,
        plan: Plan,
        call: Callable[[Candidate], Awaitable[T]],
        deadline: float,
        attempts: list[Attempt],
        *,
        keep_in_flight: bool = False,
    ) -> Served[T]:
        """`call(candidate)` makes one try. `keep_in_flight`: the caller ends the
        request later (a stream), then calls `finished` and `succeeded` or `failed`."""
        skipped: list[Availability] = []
        last_error: ProviderError | None = None
        for position, candidate in enumerate(plan.candidates):
            if self._clock() >= deadline:
                break
            store = self._store
            snapshot = store.snapshot()
            stats = snapshot.of(candidate.id)
            availability = self._health.availability(
                candidate.id, stats, snapshot.taken_at, store.clock()
            )
            if availability.usable and candidate.deployment.limits is not NO_LIMITS:
                availability = (
                    limit_reached(
                        candidate.deployment.limits,
                        stats,
                        store.local_in_flight(candidate.id),
                        store.unflushed_starts(candidate.id),
                        store.clock(),
                    )
                    or availability
                )
            if not availability.usable:
                skipped.append(msgspec.structs.replace(availability, deployment=candidate.id))
                continue
            tries = _Tries(
                candidate,
                call,
                deadline,
                attempts,
                probe=availability.state == "half_open",
                keep_in_flight=keep_in_flight,
                retry_after_cap=self._config.retries.retry_after_cap,
                # an exploration probe that fails has taught what it was sent for: the
                # request falls back at once rather than waiting to fail there again
                retry=not (plan.explored and position == 0),
            )
            try:
                return await self._with_retries(tries)
            except ProviderError as error:
                if not error.fallback:
                    raise
                last_error = error
        raise self._failure(attempts, skipped, last_error, deadline)

    async def _with_retries(self, tries: _Tries[T]) -> Served[T]:
        retries = self._config.retries
        # The first try runs outside tenacity: most requests end there, and tenacity's
        # async machinery costs tens of microseconds a request. It decides every retry.
        try:
            return await self._once(tries)
        except ProviderError as error:
            if retries.attempts == 1 or not tries.may_retry(error):
                raise
            retrying = AsyncRetrying(
                stop=stop_any(
                    stop_after_attempt(retries.attempts - 1),
                    _PastDeadline(tries.deadline, self._clock),
                ),
                wait=_Backoff(retries, self._draw, later=True),
                retry=retry_if_exception(tries.may_retry),
                reraise=True,
            )
            pause = _Backoff(retries, self._draw).first(retrying, error)
            if self._clock() + pause >= tries.deadline:
                raise
        await asyncio.sleep(pause)
        async for attempt in retrying:
            with attempt:
                return await self._once(tries)
        raise AssertionError("tenacity stops by raising")  # pragma: no cover

    async def _once(self, tries: _Tries[T]) -> Served[T]:
        candidate, probe = tries.candidate, tries.probe
        timeout = tries.deadline - self._clock()
        if self._config.attempt_timeout is not None:
            timeout = min(timeout, self._config.attempt_timeout)
        if probe:
            self._health.probe_started(candidate.id)
        self._store.started(candidate.id)
        started = self._clock()
        served = False
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                result = await tries.call(candidate)
            served = True
            return Served(candidate, result, started, probe)
        except TimeoutError as exc:
            error = UpstreamTimeout(
                f"{candidate.deployment.provider} gave no answer within {timeout:.3g} s",
                provider=candidate.deployment.provider,
            )
            tries.opened = self.failed(candidate, error, started, probe, tries.attempts)
            raise error from exc
        except ProviderError as error:
            if error.fallback:
                tries.opened = self.failed(candidate, error, started, probe, tries.attempts)
            else:  # the request's own fault: the deployment answered, it is alive
                self._health.succeeded(candidate.id, was_open=False)
            raise
        except BaseException:  # cancelled (the client left), or a bug: nothing learned
            if probe:
                self._health.probe_abandoned(candidate.id)
            raise
        finally:
            if not served or not tries.keep_in_flight:
                self._store.finished(candidate.id)

    # --- outcomes ------------------------------------------------------------------

    def failed(
        self,
        candidate: Candidate,
        error: ProviderError,
        started: float,
        probe: bool,
        attempts: list[Attempt] | None = None,
    ) -> bool:
        """Record a failed try; True if it opened the circuit."""
        latency = self._clock() - started
        stats = self._store.snapshot().of(candidate.id)
        decision = self._health.failed(candidate.id, error, stats, was_open=probe)
        if self._on_failure is not None:
            self._on_failure(candidate.id, self._store.clock())
        self._store.record(
            Outcome(
                deployment=candidate.id,
                at=self._store.clock(),
                ok=False,
                latency=latency,
                error=error.code,
                cooldown_until=decision.cooldown_until,
                open_until=decision.open_until,
            )
        )
        log_failed_try(candidate, error, latency, opened=bool(decision.open_until))
        if attempts is not None:
            attempts.append(
                Attempt(
                    provider=candidate.deployment.provider,
                    model=candidate.canonical,
                    status=error.upstream_status,
                    error=error.code,
                    latency_ms=_ms(latency),
                )
            )
        return bool(decision.open_until)

    def succeeded(
        self,
        candidate: Candidate,
        probe: bool,
        latency: float,
        completion_tokens: int | None,
        ttft: float | None = None,
        tokens: int = 0,
    ) -> None:
        """`tokens`: prompt and completion, what a `tpm` limit counts."""
        decision = self._health.succeeded(candidate.id, was_open=probe)
        self._store.record(
            Outcome(
                deployment=candidate.id,
                at=self._store.clock(),
                ok=True,
                latency=latency,
                ttft=ttft,
                completion_tokens=completion_tokens,
                generation=latency - ttft if ttft is not None else None,
                tokens=tokens,
                open_until=decision.open_until,
            )
        )

    def finished(self, candidate: Candidate) -> None:
        self._store.finished(candidate.id)

    def abandoned(self, candidate: Candidate) -> None:
        """The client went away mid-stream: nothing learned of the deployment, but a
        probe that got this far has shown it answers."""
        self._health.probe_abandoned(candidate.id)

    def _failure(
        self,
        attempts: list[Attempt],
        skipped: list[Availability],
        last_error: ProviderError | None,
        deadline: float,
    ) -> RoutingFailed:
        listed = "; ".join(
            f"{a.provider}/{a.model} {a.status or '-'} {a.error} ({a.latency_ms:g} ms)"
            for a in attempts
        )
        now = self._clock()
        if now >= deadline:
            return RoutingFailed(
                f"No answer within the {self._config.deadline:g} s deadline. Attempts: "
                + (listed or "none"),
                attempts,
                status=504,
                code="upstream_timeout",
            )
        wall = self._store.clock()
        waits = [a.retry_at - wall for a in skipped]
        if not attempts:
            retry_after = max(min(waits), 0.0) if waits else None
            if skipped and all(a.reason in _RATE_LIMITED for a in skipped):
                reasons = "; ".join(f"{a.deployment} {a.reason}" for a in skipped)
                return RoutingFailed(
                    f"Every deployment for this request is rate limited ({reasons}); retry later.",
                    attempts,
                    status=429,
                    code="upstream_rate_limited",
                    error_type="rate_limit_error",
                    retry_after=retry_after,
                )
            reasons = ", ".join(sorted({a.reason for a in skipped}))
            return RoutingFailed(
                f"No healthy deployment for this request ({reasons}); retry later.",
                attempts,
                code="no_healthy_deployment",
                retry_after=retry_after,
            )
        if last_error is not None and all(a.error == last_error.code for a in attempts):
            # one kind of failure throughout: the client sees that failure, attempts listed
            retry_after = last_error.retry_after
            if isinstance(last_error, UpstreamRateLimited):
                retry_after = min([*(w for w in waits if w > 0), retry_after or 1.0])
            message = last_error.message
            if len(attempts) > 1:
                message += f" (every attempt failed: {listed})"
            return RoutingFailed(
                message,
                attempts,
                status=last_error.status,
                code=last_error.code,
                error_type=last_error.type,
                retry_after=retry_after,
            )
        return RoutingFailed(f"Every deployment failed. Attempts: {listed}", attempts)
