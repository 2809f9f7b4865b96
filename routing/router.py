"""From a request to an answer: plan the candidates, dispatch, account for it.

`plan()` reads only the store's in-memory snapshot; what a request teaches (latency,
tokens, failures) goes back through `store.record()`, a local append. No store I/O is on
a request's path.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Protocol

import msgspec

from providers.base import Provider, ProviderCall, ProviderResponse, StreamChunk
from providers.chat_types import ChatRequest, Usage
from providers.errors import ProviderError, UpstreamTimeout
from routing.config import RoutingConfig
from routing.constraints import RequestNeeds
from routing.cost import cost_of
from routing.dispatch import Dispatcher, Served
from routing.health import HealthBoard
from routing.metadata import Attempt, RoutingMetadata
from routing.options import RouteOptions
from routing.plan import Candidate, Plan, Planner
from routing.resolution import ModelResolver
from routing.store.base import MetricsStore
from routing.usage_estimate import completion_tokens_in, estimated_usage


class CompletedCall(msgspec.Struct, kw_only=True):
    response: ProviderResponse
    metadata: RoutingMetadata
    usage: Usage  # what the cost was priced on: the upstream's, else our count
    dropped_params: tuple[str, ...] = ()


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


# What one try at one candidate does. By default the chat operation of the candidate's
# provider; an ingress for another API passes its own (a native operation on the
# deployments that speak that API, a translation onto chat for the others), and still
# gets the same plan, retries, fallbacks, health and accounting.
CompleteCall = Callable[[Candidate], Awaitable[ProviderResponse]]
OpenStream = Callable[[Candidate], AsyncGenerator[StreamChunk, None]]


class TryWrapper(Protocol):
    """Wraps every try at a candidate, whichever operation it runs (tracing: a span per
    upstream try, the try's trace context sent upstream)."""

    def complete(self, call: CompleteCall) -> CompleteCall: ...

    def stream(self, open_stream: OpenStream) -> OpenStream: ...


def _chat(request: ChatRequest | RequestNeeds) -> ChatRequest:
    if isinstance(request, RequestNeeds):
        # only a chat request has a default operation: another API brings its own
        raise TypeError("a request described by its RequestNeeds needs its own operation")
    return request


def _call(candidate: Candidate, request: ChatRequest, request_id: str) -> ProviderCall:
    return ProviderCall(
        request=request,
        model=candidate.deployment.model,
        request_id=request_id,
        drop_params=candidate.dropped_params,
    )


class Router:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        models: ModelResolver,
        config: RoutingConfig,
        store: MetricsStore | None = None,
        *,
        clock: Callable[[], float] = time.perf_counter,
        draw: random.Random | None = None,
        wrap_tries: TryWrapper | None = None,
    ) -> None:
        self._providers = providers
        self._wrap = wrap_tries
        self._config = config
        self.store = store or MetricsStore(config.metrics)
        self.clock = clock
        # a decision is in the snapshot once the flush that wrote it has been read back
        settle = 2 * config.metrics.flush + config.metrics.refresh
        self.health = HealthBoard(config.circuit, self.store.clock, settle)
        self._draw = draw or random.Random(config.exploration.seed)
        self._planner = Planner(providers, models, config, self._draw)
        self._dispatcher = Dispatcher(
            self.store, self.health, config, clock, self._draw, on_failure=self._failed
        )

    def _failed(self, deployment: str, now: float) -> None:
        self._planner.failed(deployment, now)

    def use_models(self, models: ModelResolver) -> None:
        """Serve another set of models from now on (a config reload, or the simulator's
        deployment added live); statistics, health and in-flight counts carry on. Every
        provider the new models name must be in the router's `providers` mapping."""
        self._planner = Planner(self._providers, models, self._config, self._draw)

    def plan(self, request: ChatRequest | RequestNeeds, options: RouteOptions) -> Plan:
        """`request`: a chat request, or what another API's request needs of routing."""
        store = self.store
        return self._planner.plan(
            request, options, store.snapshot(), store.clock(), store.in_flight
        )

    def metadata_for(
        self,
        candidate: Candidate,
        strategy: str,
        request_id: str,
        usage: Usage,
        latency: float,
        ttft: float | None,
        attempts: list[Attempt],
        *,
        estimated: bool = False,
    ) -> RoutingMetadata:
        generation = latency - (ttft or 0.0)
        throughput = (
            round(usage.completion_tokens / generation, 2)
            if usage.completion_tokens and generation > 0
            else None
        )
        deployment = candidate.deployment
        return RoutingMetadata(
            provider=deployment.provider,
            provider_model_id=deployment.model,
            model_canonical=candidate.canonical,
            routing_strategy=strategy,
            cost=cost_of(usage, deployment.prices, estimated=estimated),
            latency_ms=_ms(latency),
            ttft_ms=_ms(ttft) if ttft is not None else None,
            throughput_tps=throughput,
            attempts=attempts,
            request_id=request_id,
        )

    async def complete(
        self,
        request: ChatRequest | RequestNeeds,
        options: RouteOptions,
        request_id: str,
        *,
        plan: Plan | None = None,
        call: CompleteCall | None = None,
    ) -> CompletedCall:
        """`plan`: one made earlier by `plan()` (a caller that must see the candidates
        before dispatch, e.g. to admit the request); `call`: see `CompleteCall` (required
        when `request` is a `RequestNeeds`)."""
        call = call or self._chat_call(_chat(request), request_id)
        if self._wrap is not None:
            call = self._wrap.complete(call)
        plan = plan or self.plan(request, options)
        attempts: list[Attempt] = []
        deadline = self.clock() + self._config.deadline
        served = await self._dispatcher.run(plan, call, deadline, attempts)
        latency = self.clock() - served.started
        response = served.result
        usage, estimated = response.usage, False
        if usage is None:
            produced = completion_tokens_in(response.body)
            usage = estimated_usage(plan.prompt_tokens, completion_tokens=produced)
            estimated = True
        self._dispatcher.succeeded(
            served.candidate,
            served.probe,
            latency,
            usage.completion_tokens,
            tokens=usage.prompt_tokens + usage.completion_tokens,
        )
        metadata = self.metadata_for(
            served.candidate,
            plan.strategy,
            request_id,
            usage,
            latency,
            None,
            attempts,
            estimated=estimated,
        )
        return CompletedCall(
            response=response,
            metadata=metadata,
            usage=usage,
            dropped_params=served.candidate.dropped_params,
        )

    async def stream(
        self,
        request: ChatRequest | RequestNeeds,
        options: RouteOptions,
        request_id: str,
        *,
        plan: Plan | None = None,
        open_stream: OpenStream | None = None,
    ) -> RoutedStream:
        """Open the stream and wait for its first chunk, so that a failure up to then is
        still retried or falls back, and at worst is an ordinary error response.
        `plan` and `open_stream`: as `complete`'s `plan` and `call`."""
        opener = open_stream or self._chat_stream(_chat(request), request_id)
        if self._wrap is not None:
            opener = self._wrap.stream(opener)
        plan = plan or self.plan(request, options)
        attempts: list[Attempt] = []

        async def call(
            candidate: Candidate,
        ) -> tuple[StreamChunk, AsyncGenerator[StreamChunk, None]]:
            provider = self._providers[candidate.deployment.provider]
            chunks = opener(candidate)
            try:
                first = await anext(chunks)
            except StopAsyncIteration as exc:
                raise ProviderError(
                    f"{provider.name} sent an empty stream", provider=provider.name
                ) from exc
            except BaseException:
                await chunks.aclose()
                raise
            return first, chunks

        deadline = self.clock() + self._config.deadline
        served = await self._dispatcher.run(plan, call, deadline, attempts, keep_in_flight=True)
        return RoutedStream(self, self._dispatcher, served, plan, request_id, attempts)

    def _chat_call(self, request: ChatRequest, request_id: str) -> CompleteCall:
        async def chat(candidate: Candidate) -> ProviderResponse:
            provider = self._providers[candidate.deployment.provider]
            return await provider.complete(_call(candidate, request, request_id))

        return chat

    def _chat_stream(self, request: ChatRequest, request_id: str) -> OpenStream:
        def chat(candidate: Candidate) -> AsyncGenerator[StreamChunk, None]:
            provider = self._providers[candidate.deployment.provider]
            return provider.stream(_call(candidate, request, request_id))

        return chat

    @property
    def deadline(self) -> float:
        return self._config.deadline


class RoutedStream:
    """A stream whose first chunk has arrived; iterate it, then ask for its metadata."""

    def __init__(
        self,
        router: Router,
        dispatcher: Dispatcher,
        served: Served[tuple[StreamChunk, AsyncGenerator[StreamChunk, None]]],
        plan: Plan,
        request_id: str,
        attempts: list[Attempt],
    ) -> None:
        self.candidate = served.candidate
        self._served = served
        self._router = router
        self._dispatcher = dispatcher
        self._strategy = plan.strategy
        self._prompt_tokens = plan.prompt_tokens
        self.request_id = request_id
        self._attempts = attempts
        self._started = served.started
        self._first, self._rest = served.result
        self._usage: Usage | None = None
        self._ttft: float | None = None
        self._output_chunks = 0
        self._ended = False

    def _observe(self, chunk: StreamChunk) -> None:
        if chunk.usage is not None:
            self._usage = chunk.usage
        if chunk.has_output:
            self._output_chunks += 1
            if self._ttft is None:
                self._ttft = self._router.clock() - self._started

    async def chunks(self) -> AsyncIterator[StreamChunk]:
        """The deadline is checked between chunks: a stalled upstream is cut by the read
        timeout, one that keeps trickling past the deadline at its next chunk."""
        provider = self.candidate.deployment.provider
        deadline = self._started + self._router.deadline
        self._observe(self._first)
        yield self._first
        try:
            async for chunk in self._rest:
                if self._router.clock() > deadline:
                    raise UpstreamTimeout(
                        f"the stream ran past the {self._router.deadline:g} s deadline",
                        provider=provider,
                    )
                self._observe(chunk)
                yield chunk
        except ProviderError as error:
            self._end()
            self._dispatcher.failed(self.candidate, error, self._started, self._served.probe)
            raise
        self._end()
        latency = self._router.clock() - self._started
        usage = self.usage
        self._dispatcher.succeeded(
            self.candidate,
            self._served.probe,
            latency,
            usage.completion_tokens,
            self._ttft,
            tokens=usage.prompt_tokens + usage.completion_tokens,
        )

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._dispatcher.finished(self.candidate)

    @property
    def usage(self) -> Usage:
        """The upstream's usage, or our own count when it sent none (see `usage_estimated`)."""
        if self._usage is not None:
            return self._usage
        return estimated_usage(self._prompt_tokens, completion_tokens=self._output_chunks)

    @property
    def usage_estimated(self) -> bool:
        return self._usage is None

    @property
    def dropped_params(self) -> tuple[str, ...]:
        return self.candidate.dropped_params

    def metadata(self) -> RoutingMetadata:
        latency = self._router.clock() - self._started
        return self._router.metadata_for(
            self.candidate,
            self._strategy,
            self.request_id,
            self.usage,
            latency,
            self._ttft,
            self._attempts,
            estimated=self.usage_estimated,
        )

    @property
    def first_chunk(self) -> StreamChunk:
        return self._first

    async def aclose(self) -> None:
        if not self._ended:  # the client left before the end
            self._end()
            self._dispatcher.abandoned(self.candidate)
        await self._rest.aclose()
