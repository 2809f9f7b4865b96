"""Planning a request that is not chat: routing reads only its `RequestNeeds` (prompt
size, output limit, capabilities, and what each deployment's provider makes of it)."""

from __future__ import annotations

import pytest

from providers.base import Provider, ProviderResponse
from providers.capabilities import Capabilities, Needs
from providers.simulated.adapter import SimulatedProvider
from providers.simulated.config import SimulatedConfig
from routing.config import ExplorationConfig, RoutingConfig
from routing.constraints import Fit, RequestNeeds
from routing.deployments import Deployment, Prices
from routing.errors import NoCandidate
from routing.options import ProviderPreferences, RouteOptions
from routing.plan import Candidate
from routing.resolution import ModelResolver
from routing.router import Router
from routing.store.base import MetricsStore


def deployment(provider: str, capabilities: Capabilities | None = None) -> Deployment:
    prices = Prices(input_per_mtok=1.0, output_per_mtok=0.0, cached_input_per_mtok=1.0)
    return Deployment(
        provider=provider,
        model=f"{provider}-embed",
        prices=prices,
        capabilities=capabilities or Capabilities(),
    )


def router(*deployments: Deployment) -> Router:
    providers: dict[str, Provider] = {
        d.provider: SimulatedProvider(d.provider, SimulatedConfig()) for d in deployments
    }
    config = RoutingConfig(strategy="cost", exploration=ExplorationConfig(share=0))
    return Router(providers, ModelResolver({"m": list(deployments)}), config, MetricsStore())


def only_b(provider: Provider, d: Deployment) -> Fit:
    if provider.name == "a":
        return Fit(refused="has no embeddings API")
    return Fit(dropped=("user",))


def test_a_screen_refuses_deployments_with_its_reason_and_names_what_others_drop() -> None:
    r = router(deployment("a"), deployment("b"))
    needs = RequestNeeds(prompt_tokens=7, screen=only_b)
    plan = r.plan(needs, RouteOptions(models=["m"]))
    assert [c.deployment.provider for c in plan.candidates] == ["b"]
    assert plan.candidates[0].dropped_params == ("user",)
    assert plan.prompt_tokens == 7

    strict = RouteOptions(models=["m"], provider=ProviderPreferences(require_parameters=True))
    with pytest.raises(NoCandidate) as refused:
        r.plan(needs, strict)
    assert refused.value.message == (
        "No deployment can serve this request: a/m has no embeddings API; b/m cannot honour user."
    )


def test_capabilities_and_limits_apply_as_for_chat() -> None:
    r = router(
        deployment("a", Capabilities(context_window=100)),
        deployment("b", Capabilities(tools=False)),
    )
    needs = RequestNeeds(prompt_tokens=150, capabilities=Needs(tools=True))
    with pytest.raises(NoCandidate) as refused:
        r.plan(needs, RouteOptions(models=["m"]))
    assert "a/m lacks context window (100)" in refused.value.message
    assert "b/m lacks tools" in refused.value.message


async def test_an_answer_without_usage_is_priced_on_the_plans_prompt_estimate() -> None:
    r = router(deployment("a"))
    needs = RequestNeeds(prompt_tokens=1000)

    async def embed(candidate: Candidate) -> ProviderResponse:
        return ProviderResponse(body=b'{"object": "list", "data": []}')

    done = await r.complete(needs, RouteOptions(models=["m"]), "r1", call=embed)
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (1000, 0)
    assert done.metadata.cost.input_usd == 1000 / 1e6
    assert done.metadata.cost.estimated is True


async def test_a_request_of_another_api_must_bring_its_operation() -> None:
    r = router(deployment("a"))
    with pytest.raises(TypeError):
        await r.complete(RequestNeeds(prompt_tokens=1), RouteOptions(models=["m"]), "r1")
    with pytest.raises(TypeError):
        await r.stream(RequestNeeds(prompt_tokens=1), RouteOptions(models=["m"]), "r1")
