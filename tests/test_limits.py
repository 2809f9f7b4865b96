"""The vendor's limits on a deployment (`max_concurrency`, `rpm`, `tpm`) as routing
constraints: the real router on the memory store, with an injected wall clock and tries
held open by the test, so nothing here depends on the machine's speed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.chat_decoding import decode_chat_body
from gateway.config import ConfigError, parse_config
from providers.base import ProviderResponse
from providers.capabilities import Capabilities
from providers.chat_types import Usage
from providers.simulated.adapter import SimulatedProvider
from providers.simulated.config import SimulatedConfig
from routing.config import ExplorationConfig, RoutingConfig
from routing.deployments import Deployment, Limits, Prices
from routing.errors import RoutingFailed
from routing.plan import Candidate
from routing.resolution import ModelResolver
from routing.router import Router
from routing.store.base import MetricsStore

T0 = 1_700_000_000.0  # on a bucket boundary: the minute's count is easy to follow


class Wall:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def deployment(provider: str, price: float, **limits: Any) -> Deployment:
    return Deployment(
        provider=provider,
        model=f"{provider}-m",
        prices=Prices(input_per_mtok=price, output_per_mtok=price, cached_input_per_mtok=price),
        capabilities=Capabilities(),
        limits=Limits(**limits),
    )


def router_of(*deployments: Deployment, wall: Wall) -> Router:
    """Model `m` on the deployments, `cost` strategy (the cheapest first), no probing."""
    providers = {
        d.provider: SimulatedProvider(d.provider, SimulatedConfig(ttft_ms=0)) for d in deployments
    }
    config = RoutingConfig(strategy="cost", exploration=ExplorationConfig(share=0.0))
    return Router(
        providers, ModelResolver({"m": list(deployments)}), config, MetricsStore(clock=wall)
    )


REQUEST = decode_chat_body(b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}')


class Held:
    """Tries that wait until the test lets them answer (10 prompt + 20 completion tokens)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.tried: list[str] = []
        self._new_try = asyncio.Event()

    async def tries(self, count: int) -> None:
        """Until `count` tries have begun."""
        while len(self.tried) < count:
            self._new_try.clear()
            await self._new_try.wait()

    async def __call__(self, candidate: Candidate) -> ProviderResponse:
        self.tried.append(candidate.deployment.provider)
        self._new_try.set()
        await self.release.wait()
        usage = Usage(prompt_tokens=10, completion_tokens=20, total_tokens=30)
        return ProviderResponse(body=b"{}", usage=usage)


async def ask(router: Router, call: Held, request_id: str = "r") -> str:
    completed = await router.complete(*REQUEST, request_id, call=call)
    return completed.metadata.provider


async def test_max_concurrency_sends_the_next_request_elsewhere() -> None:
    router = router_of(
        deployment("cheap", 0.1, max_concurrency=2), deployment("dear", 1.0), wall=Wall()
    )
    held = Held()
    first = [asyncio.create_task(ask(router, held, f"r{i}")) for i in range(3)]
    await asyncio.wait_for(held.tries(3), timeout=10)
    assert held.tried == ["cheap", "cheap", "dear"]  # two in flight: cheap is full
    held.release.set()
    assert await asyncio.gather(*first) == ["cheap", "cheap", "dear"]
    assert await ask(router, held) == "cheap"  # they ended: cheap takes the next


async def test_every_deployment_at_its_limit_is_a_429_naming_why() -> None:
    wall = Wall()
    router = router_of(deployment("only", 0.1, max_concurrency=1), wall=wall)
    held = Held()
    running = asyncio.create_task(ask(router, held))
    await asyncio.wait_for(held.tries(1), timeout=10)
    with pytest.raises(RoutingFailed) as refused:
        await ask(router, held, "r2")
    error = refused.value
    assert (error.status, error.code, error.type) == (
        429,
        "upstream_rate_limited",
        "rate_limit_error",
    )
    assert "only/only-m at max_concurrency" in error.message
    assert error.retry_after == pytest.approx(1.0)
    assert held.tried == ["only"]  # the refused request never reached the vendor
    held.release.set()
    await running


async def test_rpm_counts_tries_begun_in_the_last_minute() -> None:
    wall = Wall()
    router = router_of(deployment("cheap", 0.1, rpm=3), deployment("dear", 1.0), wall=wall)
    held = Held()
    held.release.set()
    assert [await ask(router, held) for _ in range(2)] == ["cheap", "cheap"]
    await router.store.sync()  # two in the snapshot now
    wall.now += 15
    assert await ask(router, held) == "cheap"  # the third, not yet flushed, still counts
    assert await ask(router, held) == "dear"
    await router.store.sync()
    assert router.store.snapshot().of("cheap/cheap-m").minute_requests == 3
    # the first two leave the minute with their bucket, 60 s after it began
    wall.now = T0 + 60
    await router.store.sync()
    assert router.store.snapshot().of("cheap/cheap-m").minute_requests == 1
    assert await ask(router, held) == "cheap"


async def test_rpm_reached_everywhere_is_a_429_until_the_minute_moves_on() -> None:
    wall = Wall()
    router = router_of(deployment("only", 0.1, rpm=1), wall=wall)
    held = Held()
    held.release.set()
    await ask(router, held)
    wall.now += 5
    await router.store.sync()
    with pytest.raises(RoutingFailed) as refused:
        await ask(router, held)
    assert refused.value.status == 429
    assert "only/only-m at its rpm" in refused.value.message
    assert refused.value.retry_after == pytest.approx(55.0)  # when the try leaves the count


async def test_tpm_counts_the_tokens_answers_used() -> None:
    wall = Wall()
    router = router_of(deployment("cheap", 0.1, tpm=50), deployment("dear", 1.0), wall=wall)
    held = Held()
    held.release.set()
    assert [await ask(router, held) for _ in range(2)] == ["cheap", "cheap"]  # 60 tokens
    await router.store.sync()
    assert router.store.snapshot().of("cheap/cheap-m").minute_tokens == 60
    assert await ask(router, held) == "dear"


def test_limits_are_validated_with_the_config() -> None:
    base: dict[str, Any] = {
        "auth": "none",
        "providers": {"p": {"kind": "simulated"}},
        "models": {
            "m": {
                "deployments": [
                    {
                        "provider": "p",
                        "model": "x",
                        "input_per_mtok": 1,
                        "output_per_mtok": 1,
                        "max_concurrency": 4,
                        "rpm": 600,
                        "tpm": 100000,
                    }
                ]
            }
        },
    }
    config = parse_config(base)
    assert config.models["m"].deployments[0].rpm == 600
    base["models"]["m"]["deployments"][0]["max_concurrency"] = 0
    base["routing"] = {"metrics": {"window": 30, "bucket": 10}}
    with pytest.raises(ConfigError) as invalid:
        parse_config(base)
    problems = str(invalid.value)
    assert "models.m.deployments[0].max_concurrency" in problems
    base["models"]["m"]["deployments"][0]["max_concurrency"] = 4
    with pytest.raises(ConfigError) as invalid:
        parse_config(base)
    problems = str(invalid.value)
    assert "models.m.deployments[0].rpm: a limit a minute needs routing.metrics.window" in problems
    assert "models.m.deployments[0].tpm" in problems
