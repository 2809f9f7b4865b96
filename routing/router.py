"""From a request to an answer: pick a deployment, call it, account for it.

This first version serves a model with its first deployment; the scoring engine plugs
in at `plan()`. Everything after the choice (timing, cost, metadata) is complete.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping

import msgspec

from providers.base import Provider, ProviderCall, ProviderResponse, StreamChunk
from providers.capabilities import missing_capability
from providers.chat_types import ChatRequest, Usage
from providers.errors import ProviderError, UpstreamTimeout
from routing.config import RoutingConfig, Strategy
from routing.cost import cost_of
from routing.deployments import Deployment
from routing.errors import NoCandidate
from routing.metadata import RoutingMetadata
from routing.options import RouteOptions
from routing.resolution import ModelResolver, ResolvedModel
from routing.usage_estimate import completion_tokens_in, estimated_usage

_SORT_STRATEGY: dict[str, Strategy] = {
    "price": "cost",
    "latency": "latency",
    "throughput": "throughput",
}


class Selection(msgspec.Struct, kw_only=True):
    """The deployment chosen to serve a request, and under which strategy."""

    canonical: str
    deployment: Deployment
    strategy: Strategy
    dropped_params: tuple[str, ...] = ()  # what the deployment will not honour


class CompletedCall(msgspec.Struct, kw_only=True):
    response: ProviderResponse
    metadata: RoutingMetadata
    dropped_params: tuple[str, ...] = ()


def _limit_exceeded(request: ChatRequest, deployment: Deployment) -> str | None:
    """The token limit of the deployment's model the request would not fit, if any."""
    capabilities, wanted = deployment.capabilities, request.output_limit or 0
    if capabilities.max_output_tokens is not None and wanted > capabilities.max_output_tokens:
        return f"max output tokens ({capabilities.max_output_tokens})"
    window = capabilities.context_window
    if window is not None and request.estimated_prompt_tokens() + wanted > window:
        return f"context window ({window})"
    return None


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


class Router:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        models: ModelResolver,
        config: RoutingConfig,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._providers = providers
        self._models = models
        self._config = config
        self.clock = clock

    def plan(self, request: ChatRequest, options: RouteOptions) -> Selection:
        """The first deployment, in the order of `models`, that can serve the request.

        A deployment lacking what the request cannot do without (tools, vision, a JSON
        schema, room in its context window or output limit) is skipped; so is one that would drop a
        parameter when the client sent `provider.require_parameters: true`."""
        require_all = options.provider is not None and options.provider.require_parameters
        # every name is resolved first: an unknown model is a 404 even if an earlier one serves
        resolved = [self._models.resolve(name) for name in options.models]
        refusals: list[str] = []
        for model in resolved:
            for deployment in model.deployments:
                missing = missing_capability(request, deployment.capabilities)
                if missing is None:
                    missing = _limit_exceeded(request, deployment)
                if missing is not None:
                    refusals.append(f"{deployment.provider}/{model.canonical} lacks {missing}")
                    continue
                provider = self._providers[deployment.provider]
                dropped = provider.unsupported_params(request, deployment.capabilities)
                if dropped and require_all:
                    refusals.append(
                        f"{deployment.provider}/{model.canonical} cannot honour "
                        + ", ".join(dropped)
                    )
                    continue
                return Selection(
                    canonical=model.canonical,
                    deployment=deployment,
                    strategy=self._strategy(options, model),
                    dropped_params=tuple(dropped),
                )
        raise NoCandidate(
            "No deployment can serve this request: " + "; ".join(refusals) + ".",
            param="model",
        )

    def _strategy(self, options: RouteOptions, model: ResolvedModel) -> Strategy:
        if options.routing.strategy is not None:
            return options.routing.strategy
        if options.provider is not None and options.provider.sort is not None:
            return _SORT_STRATEGY[options.provider.sort]
        return model.strategy or self._config.strategy

    def metadata_for(
        self,
        choice: Selection,
        request_id: str,
        usage: Usage,
        latency: float,
        ttft: float | None,
        *,
        estimated: bool = False,
    ) -> RoutingMetadata:
        generation = latency - (ttft or 0.0)
        throughput = (
            round(usage.completion_tokens / generation, 2)
            if usage.completion_tokens and generation > 0
            else None
        )
        return RoutingMetadata(
            provider=choice.deployment.provider,
            provider_model_id=choice.deployment.model,
            model_canonical=choice.canonical,
            routing_strategy=choice.strategy,
            cost=cost_of(usage, choice.deployment.prices, estimated=estimated),
            latency_ms=_ms(latency),
            ttft_ms=_ms(ttft) if ttft is not None else None,
            throughput_tps=throughput,
            attempts=[],
            request_id=request_id,
        )

    async def complete(
        self, request: ChatRequest, options: RouteOptions, request_id: str
    ) -> CompletedCall:
        choice = self.plan(request, options)
        provider = self._providers[choice.deployment.provider]
        call = ProviderCall(
            request=request,
            model=choice.deployment.model,
            request_id=request_id,
            drop_params=choice.dropped_params,
        )
        started = self.clock()
        try:
            async with asyncio.timeout(self._config.deadline):
                response = await provider.complete(call)
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"no answer within the {self._config.deadline:g} s deadline",
                provider=provider.name,
            ) from exc
        latency = self.clock() - started
        usage, estimated = response.usage, False
        if usage is None:
            produced = completion_tokens_in(response.body)
            usage, estimated = estimated_usage(request, completion_tokens=produced), True
        metadata = self.metadata_for(choice, request_id, usage, latency, None, estimated=estimated)
        return CompletedCall(
            response=response, metadata=metadata, dropped_params=choice.dropped_params
        )

    async def stream(
        self, request: ChatRequest, options: RouteOptions, request_id: str
    ) -> RoutedStream:
        """Open the stream and wait for its first chunk, so that a failure up to then is
        still an ordinary error response (and, later, a fallback), not a broken stream."""
        choice = self.plan(request, options)
        provider = self._providers[choice.deployment.provider]
        call = ProviderCall(
            request=request,
            model=choice.deployment.model,
            request_id=request_id,
            drop_params=choice.dropped_params,
        )
        started = self.clock()
        chunks = provider.stream(call)
        try:
            async with asyncio.timeout(self._config.deadline):
                first = await anext(chunks)
        except TimeoutError as exc:
            await chunks.aclose()
            raise UpstreamTimeout(
                f"no first chunk within the {self._config.deadline:g} s deadline",
                provider=provider.name,
            ) from exc
        except StopAsyncIteration as exc:
            raise ProviderError(
                f"{provider.name} sent an empty stream", provider=provider.name
            ) from exc
        except BaseException:
            await chunks.aclose()
            raise
        return RoutedStream(self, choice, request, request_id, started, first, chunks)

    @property
    def deadline(self) -> float:
        return self._config.deadline


class RoutedStream:
    """A stream whose first chunk has arrived; iterate it, then ask for its metadata."""

    def __init__(
        self,
        router: Router,
        choice: Selection,
        request: ChatRequest,
        request_id: str,
        started: float,
        first: StreamChunk,
        rest: AsyncGenerator[StreamChunk, None],
    ) -> None:
        self.choice = choice
        self._router = router
        self._request = request
        self.request_id = request_id
        self._started = started
        self._first = first
        self._rest = rest
        self._usage: Usage | None = None
        self._ttft: float | None = None
        self._output_chunks = 0

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
        deadline = self._started + self._router.deadline
        self._observe(self._first)
        yield self._first
        async for chunk in self._rest:
            if self._router.clock() > deadline:
                raise UpstreamTimeout(
                    f"the stream ran past the {self._router.deadline:g} s deadline",
                    provider=self.choice.deployment.provider,
                )
            self._observe(chunk)
            yield chunk

    @property
    def usage(self) -> Usage:
        """The upstream's usage, or our own count when it sent none (see `usage_estimated`)."""
        if self._usage is not None:
            return self._usage
        return estimated_usage(self._request, completion_tokens=self._output_chunks)

    @property
    def usage_estimated(self) -> bool:
        return self._usage is None

    def metadata(self) -> RoutingMetadata:
        latency = self._router.clock() - self._started
        return self._router.metadata_for(
            self.choice,
            self.request_id,
            self.usage,
            latency,
            self._ttft,
            estimated=self.usage_estimated,
        )

    @property
    def first_chunk(self) -> StreamChunk:
        return self._first

    async def aclose(self) -> None:
        await self._rest.aclose()
