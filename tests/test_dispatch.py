"""The dispatcher's bookkeeping around a try that ends without a verdict."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

from gateway.chat_decoding import decode_chat_body
from providers.base import ProviderResponse, StreamChunk
from providers.capabilities import Capabilities
from providers.chat_types import Usage
from providers.errors import UpstreamUnavailable
from providers.simulated.adapter import SimulatedProvider
from providers.simulated.config import SimulatedConfig
from routing.config import CircuitConfig, RoutingConfig
from routing.deployments import Deployment, Prices
from routing.plan import Candidate
from routing.resolution import ModelResolver
from routing.router import Router
from routing.stats import DeploymentStats
from routing.store.base import MetricsStore

T0 = 1_700_000_000.0


class Wall:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


async def test_a_cancelled_probe_does_not_block_the_deployment() -> None:
    wall = Wall()
    store = MetricsStore(clock=wall)
    prices = Prices(input_per_mtok=1.0, output_per_mtok=1.0, cached_input_per_mtok=1.0)
    deployment = Deployment(provider="sim", model="s1", prices=prices, capabilities=Capabilities())
    router = Router(
        {"sim": SimulatedProvider("sim", SimulatedConfig(ttft_ms=5000))},
        ModelResolver({"m": [deployment]}),
        RoutingConfig(circuit=CircuitConfig(consecutive_failures=1, cooldown=1.0)),
        store,
    )
    failure = UpstreamUnavailable("down", provider="sim")
    assert router.health.failed("sim/s1", failure, DeploymentStats(), was_open=False).open_until
    wall.now = T0 + 2.0  # past the cooldown: half-open

    def availability() -> tuple[bool, str]:
        state = router.health.availability("sim/s1", DeploymentStats(), 0.0, wall.now)
        return state.usable, state.reason

    request, options = decode_chat_body(
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
    )
    probe = asyncio.create_task(router.complete(request, options, "r1"))
    await asyncio.sleep(0.05)
    assert availability() == (False, "probe in flight")
    probe.cancel()  # the client went away mid-probe
    with contextlib.suppress(asyncio.CancelledError):
        await probe
    assert availability() == (True, "")  # the next request probes


async def test_a_caller_may_plan_first_and_bring_its_own_operation() -> None:
    """The hook other APIs' ingresses and admission use: a plan made before dispatch, and
    a per-candidate operation in place of chat, still retried and accounted as chat is."""
    prices = Prices(input_per_mtok=1.0, output_per_mtok=2.0, cached_input_per_mtok=1.0)
    deployment = Deployment(provider="sim", model="s1", prices=prices, capabilities=Capabilities())
    router = Router(
        {"sim": SimulatedProvider("sim", SimulatedConfig(ttft_ms=0))},
        ModelResolver({"m": [deployment]}),
        RoutingConfig(),
        MetricsStore(),
    )
    request, options = decode_chat_body(
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
    )
    plan = router.plan(request, options)
    tried: list[str] = []

    async def native(candidate: Candidate) -> ProviderResponse:
        tried.append(candidate.id)
        if len(tried) == 1:
            raise UpstreamUnavailable("once", provider="sim")
        return ProviderResponse(body=b'{"native": true}', usage=Usage(prompt_tokens=10))

    completed = await router.complete(request, options, "r2", plan=plan, call=native)
    assert tried == ["sim/s1", "sim/s1"]  # the first failure was retried
    assert completed.response.body == b'{"native": true}'
    assert completed.metadata.cost.input_usd == 10 / 1e6
    assert [a.error for a in completed.metadata.attempts] == ["upstream_unavailable"]

    async def chunks(candidate: Candidate) -> AsyncGenerator[StreamChunk, None]:
        yield StreamChunk(data=b"first", has_output=True)
        yield StreamChunk(data=b"last", usage=Usage(prompt_tokens=1, completion_tokens=3))

    stream = await router.stream(request, options, "r3", plan=plan, open_stream=chunks)
    assert [c.data async for c in stream.chunks()] == [b"first", b"last"]
    assert stream.usage.completion_tokens == 3
    await stream.aclose()
