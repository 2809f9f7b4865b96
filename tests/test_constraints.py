"""What a request allows (`Constraints`, `refusal`), and the plan built from it.

Requests go through `decode_chat_body`, so they are exactly what the gateway routes.
"""

from __future__ import annotations

import random
import re
from typing import Any

import msgspec
import pytest

from gateway.chat_decoding import decode_chat_body
from providers.base import Provider
from providers.capabilities import Capabilities
from providers.chat_types import ChatRequest
from providers.simulated.adapter import SimulatedProvider
from providers.simulated.config import SimulatedConfig
from routing.config import ExplorationConfig, RoutingConfig, Strategy
from routing.constraints import Constraints, RequestNeeds, refusal
from routing.deployments import Deployment, Prices
from routing.errors import ModelNotFound, NoCandidate
from routing.options import MaxPrice, RouteOptions
from routing.plan import Plan, Planner
from routing.resolution import ModelResolver
from routing.stats import DeploymentStats, PriceOverride, Snapshot, deployment_id, price_key
from tests.routing_setup import HELLO, IMAGE_MESSAGE, TOOL

JSON_SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "x", "schema": {"type": "object"}},
}
NOW = 1_700_000_000.0


def decode(body: dict[str, Any]) -> tuple[ChatRequest, RouteOptions]:
    return decode_chat_body(msgspec.json.encode({"model": "m1", "messages": HELLO, **body}))


def constraints_of(body: dict[str, Any]) -> Constraints:
    return Constraints.of(decode(body)[1])


def deployment(
    provider: str,
    model: str = "m-id",
    input_price: float = 1.0,
    output_price: float = 2.0,
    **capabilities: Any,
) -> Deployment:
    return Deployment(
        provider=provider,
        model=model,
        prices=Prices(
            input_per_mtok=input_price,
            output_per_mtok=output_price,
            cached_input_per_mtok=input_price,
        ),
        capabilities=Capabilities(**capabilities),
    )


# --- Constraints.of -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "only", "ignore"),
    [
        ({}, None, frozenset()),
        ({"routing": {"only": ["Groq", "TOGETHER"]}}, {"groq", "together"}, frozenset()),
        ({"provider": {"only": ["Groq"]}}, {"groq"}, frozenset()),
        ({"routing": {"ignore": ["Groq"]}}, None, {"groq"}),
        ({"provider": {"ignore": ["GROQ"]}}, None, {"groq"}),
        # exclusions add up: neither is routed to
        (
            {"routing": {"ignore": ["A"]}, "provider": {"ignore": ["b"]}},
            None,
            {"a"},
        ),
        ({"gateway": {"models": ["m"], "routing": {"only": ["X"]}}}, {"x"}, frozenset()),
        ({"routing": {"only": ["A"]}, "provider": {"only": ["b"]}}, {"a"}, frozenset()),
    ],
    ids=[
        "none",
        "routing-only",
        "provider-only",
        "routing-ignore",
        "provider-ignore",
        "routing-ignore-wins",
        "routing-only-wins",
        "gateway-routing-only",
    ],
)
def test_only_and_ignore_are_lower_case_sets(
    body: dict[str, Any], only: set[str] | None, ignore: set[str]
) -> None:
    if "gateway" in body:  # `model` together with `gateway.models` is a 400
        _, options = decode_chat_body(msgspec.json.encode({"messages": HELLO, **body}))
        constraints = Constraints.of(options)
    else:
        constraints = constraints_of(body)
    assert constraints.only == (frozenset(only) if only is not None else None)
    assert constraints.ignore == frozenset(ignore)


@pytest.mark.parametrize(
    ("body", "order"),
    [
        ({"routing": {"order": ["Beta", "alpha"]}}, ("beta", "alpha")),
        ({"provider": {"order": ["Gamma"]}}, ("gamma",)),
        ({"routing": {"order": ["beta"]}, "provider": {"order": ["gamma"]}}, ("beta",)),
        ({}, ()),
    ],
    ids=["routing", "provider", "routing-wins", "none"],
)
def test_order(body: dict[str, Any], order: tuple[str, ...]) -> None:
    assert constraints_of(body).order == order


@pytest.mark.parametrize(
    ("body", "max_price"),
    [
        ({"routing": {"max_price": {"prompt": 1}}}, MaxPrice(prompt=1)),
        ({"provider": {"max_price": {"completion": 2}}}, MaxPrice(completion=2)),
        (
            {"routing": {"max_price": {"prompt": 1}}, "provider": {"max_price": {"prompt": 5}}},
            MaxPrice(prompt=1),
        ),
        ({}, None),
    ],
    ids=["routing", "provider", "routing-wins", "none"],
)
def test_max_price(body: dict[str, Any], max_price: MaxPrice | None) -> None:
    assert constraints_of(body).max_price == max_price


@pytest.mark.parametrize(
    ("body", "allowed"),
    [
        ({}, True),
        ({"routing": {"allow_fallbacks": False}}, False),
        ({"provider": {"allow_fallbacks": False}}, False),
        ({"routing": {"allow_fallbacks": True}, "provider": {"allow_fallbacks": False}}, False),
    ],
    ids=["default", "routing", "provider", "either-says-no"],
)
def test_allow_fallbacks(body: dict[str, Any], allowed: bool) -> None:
    assert constraints_of(body).allow_fallbacks is allowed


def test_latency_ceiling_and_require_parameters() -> None:
    constraints = constraints_of(
        {"routing": {"max_latency_ms": 750}, "provider": {"require_parameters": True}}
    )
    assert constraints.max_latency_ms == 750
    assert constraints.require_parameters is True
    assert constraints_of({}).require_parameters is False


# --- refusal --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "target", "stats", "why"),
    [
        ({"routing": {"only": ["Groq"]}}, deployment("together"), {}, "not in `only`"),
        ({"routing": {"only": ["Groq"]}}, deployment("GROQ"), {}, None),
        ({"provider": {"only": ["groq"]}}, deployment("together"), {}, "not in `only`"),
        ({"routing": {"ignore": ["GROQ"]}}, deployment("groq"), {}, "in `ignore`"),
        ({"provider": {"ignore": ["groq"]}}, deployment("Groq"), {}, "in `ignore`"),
        ({"routing": {"ignore": ["groq"]}}, deployment("together"), {}, None),
        (
            {"routing": {"max_price": {"prompt": 1}}},
            deployment("p", input_price=3),
            {},
            "input price 3 over max_price.prompt 1",
        ),
        ({"routing": {"max_price": {"prompt": 1}}}, deployment("p", input_price=1), {}, None),
        (
            {"provider": {"max_price": {"completion": 2}}},
            deployment("p", output_price=2.5),
            {},
            "output price 2.5 over max_price.completion 2",
        ),
        (
            {"routing": {"max_price": {"completion": 2}}},
            deployment("p", input_price=50, output_price=2),
            {},
            None,
        ),
        (
            {"routing": {"max_latency_ms": 500}},
            deployment("p"),
            {"latency_ms": 600.0},
            "observed latency 600 ms over max_latency_ms 500",
        ),
        ({"routing": {"max_latency_ms": 500}}, deployment("p"), {"latency_ms": 500.0}, None),
        ({"routing": {"max_latency_ms": 500}}, deployment("p"), {}, None),  # unknown passes
        ({"tools": [TOOL]}, deployment("p", tools=False), {}, "lacks tools"),
        ({"tools": [TOOL]}, deployment("p"), {}, None),
        ({"messages": [IMAGE_MESSAGE]}, deployment("p", vision=False), {}, "lacks vision"),
        ({"messages": [IMAGE_MESSAGE]}, deployment("p"), {}, None),
        ({}, deployment("p", vision=False, tools=False, json_schema=False), {}, None),
        (
            {"response_format": JSON_SCHEMA},
            deployment("p", json_schema=False),
            {},
            "lacks json_schema",
        ),
        (
            {"response_format": {"type": "json_object"}},
            deployment("p", json_schema=False),
            {},
            None,
        ),
        (
            {"max_completion_tokens": 9000},
            deployment("p", max_output_tokens=8192),
            {},
            "lacks max output tokens (8192)",
        ),
        ({"max_tokens": 8192}, deployment("p", max_output_tokens=8192), {}, None),
    ],
    ids=[
        "only-refuses",
        "only-case-insensitive",
        "provider-only-refuses",
        "ignore-refuses",
        "provider-ignore-case-insensitive",
        "ignore-others-pass",
        "max-price-prompt",
        "max-price-prompt-equal-passes",
        "max-price-completion",
        "max-price-completion-ignores-input",
        "max-latency",
        "max-latency-equal-passes",
        "max-latency-unknown-passes",
        "tools",
        "tools-supported",
        "vision",
        "vision-supported",
        "plain-request-needs-nothing",
        "json-schema",
        "json-object-is-not-json-schema",
        "max-output-tokens",
        "max-output-tokens-equal-passes",
    ],
)
def test_refusal(
    body: dict[str, Any], target: Deployment, stats: dict[str, Any], why: str | None
) -> None:
    request, options = decode(body)
    got = refusal(
        RequestNeeds.of(request), target, DeploymentStats(**stats), Constraints.of(options)
    )
    assert got == why


def test_context_window_counts_prompt_and_completion() -> None:
    request, options = decode({"max_tokens": 100})
    prompt = request.estimated_prompt_tokens()
    assert prompt > 1
    exactly = deployment("p", context_window=prompt + 100)
    one_short = deployment("p", context_window=prompt + 99)
    constraints = Constraints.of(options)
    assert refusal(RequestNeeds.of(request), exactly, DeploymentStats(), constraints) is None
    assert refusal(RequestNeeds.of(request), one_short, DeploymentStats(), constraints) == (
        f"lacks context window ({prompt + 99})"
    )


def test_context_window_without_a_token_limit_counts_the_prompt() -> None:
    request, options = decode({})
    prompt = request.estimated_prompt_tokens()
    constraints = Constraints.of(options)
    fits = deployment("p", context_window=prompt)
    too_small = deployment("p", context_window=prompt - 1)
    assert refusal(RequestNeeds.of(request), fits, DeploymentStats(), constraints) is None
    assert refusal(RequestNeeds.of(request), too_small, DeploymentStats(), constraints) == (
        f"lacks context window ({prompt - 1})"
    )


# --- the plan -------------------------------------------------------------------------

PROVIDERS = ("alpha", "beta", "gamma")
# input = output price per provider, in config order alpha, beta, gamma
M1_PRICES = {"alpha": 3.0, "beta": 1.0, "gamma": 2.0}  # cost order: beta, gamma, alpha
M2_PRICES = {"alpha": 1.0, "beta": 3.0, "gamma": 2.0}  # cost order: alpha, gamma, beta
M1_LATENCY = {"alpha": 100.0, "beta": 900.0, "gamma": 500.0}  # fastest: alpha, gamma, beta


def model_deployments(model: str, prices: dict[str, float]) -> list[Deployment]:
    return [
        deployment(name, f"{model}-{name}", prices[name], prices[name], logprobs=name != "beta")
        for name in PROVIDERS
    ]


MODELS = {"m1": model_deployments("m1", M1_PRICES), "m2": model_deployments("m2", M2_PRICES)}


def fresh_stats(latency_ms: float) -> DeploymentStats:
    """Enough recent data that no deployment is explored."""
    return DeploymentStats(requests=50, latency_ms=latency_ms, last_seen=NOW - 1)


def snapshot(prices: dict[str, PriceOverride] | None = None) -> Snapshot:
    stats = {
        deployment_id(d.provider, d.model): fresh_stats(M1_LATENCY[d.provider])
        for deployments in MODELS.values()
        for d in deployments
    }
    return Snapshot(taken_at=NOW, stats=stats, prices=prices or {})


def planner(strategy: Strategy = "cost") -> Planner:
    providers: dict[str, Provider] = {
        name: SimulatedProvider(name, SimulatedConfig()) for name in PROVIDERS
    }
    config = RoutingConfig(strategy=strategy, exploration=ExplorationConfig(share=0))
    return Planner(providers, ModelResolver(MODELS), config, random.Random(0))


def plan_for(
    body: dict[str, Any],
    strategy: Strategy = "cost",
    prices: dict[str, PriceOverride] | None = None,
) -> Plan:
    request, options = decode_chat_body(msgspec.json.encode({"messages": HELLO, **body}))
    return planner(strategy).plan(request, options, snapshot(prices), NOW)


def order_of(plan: Plan) -> list[str]:
    return [f"{c.canonical}:{c.deployment.provider}" for c in plan.candidates]


def test_plan_is_each_models_deployments_ranked_in_the_clients_model_order() -> None:
    plan = plan_for({"models": ["m1", "m2"]})
    assert plan.strategy == "cost"
    assert order_of(plan) == [
        "m1:beta",
        "m1:gamma",
        "m1:alpha",
        "m2:alpha",
        "m2:gamma",
        "m2:beta",
    ]
    assert plan.explored is False
    first = plan.candidates[0]
    assert first.id == "beta/m1-beta"
    assert first.deployment.model == "m1-beta"
    assert first.stats == fresh_stats(M1_LATENCY["beta"])
    assert order_of(plan_for({"models": ["m2", "m1"]}))[:3] == ["m2:alpha", "m2:gamma", "m2:beta"]


@pytest.mark.parametrize(
    ("routing", "order"),
    [
        (
            {"order": ["Alpha"]},
            ["m1:alpha", "m1:beta", "m1:gamma", "m2:alpha", "m2:gamma", "m2:beta"],
        ),
        (
            {"order": ["gamma", "alpha"]},
            ["m1:gamma", "m1:alpha", "m1:beta", "m2:gamma", "m2:alpha", "m2:beta"],
        ),
        ({"allow_fallbacks": False}, ["m1:beta", "m2:alpha"]),
        (
            {"order": ["gamma", "alpha"], "allow_fallbacks": False},
            ["m1:gamma", "m1:alpha", "m2:gamma", "m2:alpha"],
        ),
        ({"order": ["nobody"], "allow_fallbacks": False}, []),
    ],
    ids=[
        "order-first",
        "order-two",
        "no-fallbacks-best",
        "no-fallbacks-ordered-ones",
        "no-fallbacks-unknown-order",
    ],
)
def test_client_order_and_allow_fallbacks(routing: dict[str, Any], order: list[str]) -> None:
    body = {"models": ["m1", "m2"], "routing": routing}
    if not order:
        with pytest.raises(NoCandidate, match=r"not in `order` \(allow_fallbacks: false\)"):
            plan_for(body)
        return
    assert order_of(plan_for(body)) == order


def test_provider_object_order_and_allow_fallbacks() -> None:
    body = {"model": "m1", "provider": {"order": ["GAMMA"], "allow_fallbacks": False}}
    assert order_of(plan_for(body)) == ["m1:gamma"]


def test_no_candidate_names_every_refusal() -> None:
    body = {
        "models": ["m1", "m2"],
        "routing": {"ignore": ["beta"], "max_price": {"prompt": 0.5}},
    }
    with pytest.raises(NoCandidate) as caught:
        plan_for(body)
    error = caught.value
    assert (error.status, error.code, error.param) == (400, "no_candidate", "model")
    message = error.message
    for refused in (
        "alpha/m1 input price 3 over max_price.prompt 0.5",
        "beta/m1 in `ignore`",
        "gamma/m1 input price 2 over max_price.prompt 0.5",
        "alpha/m2 input price 1 over max_price.prompt 0.5",
        "beta/m2 in `ignore`",
        "gamma/m2 input price 2 over max_price.prompt 0.5",
    ):
        assert refused in message


def test_a_model_nothing_can_serve_is_skipped_for_the_next() -> None:
    # only alpha and gamma under 2.5: m1 has gamma (2); m2 alpha (1) and gamma (2)
    body = {"models": ["m1", "m2"], "routing": {"max_price": {"prompt": 2.5}, "only": ["alpha"]}}
    assert order_of(plan_for(body)) == ["m2:alpha"]


def test_require_parameters_refuses_a_deployment_that_would_drop_one() -> None:
    # beta lacks logprobs: dropped and named, or refused when parameters are required
    plan = plan_for({"model": "m1", "logprobs": True})
    assert order_of(plan) == ["m1:beta", "m1:gamma", "m1:alpha"]
    assert plan.candidates[0].dropped_params == ("logprobs",)
    assert plan.candidates[1].dropped_params == ()
    required = plan_for({"model": "m1", "logprobs": True, "provider": {"require_parameters": True}})
    assert order_of(required) == ["m1:gamma", "m1:alpha"]
    with pytest.raises(NoCandidate, match="beta/m1 cannot honour logprobs"):
        plan_for(
            {
                "model": "m1",
                "logprobs": True,
                "provider": {"require_parameters": True, "only": ["beta"]},
            }
        )


@pytest.mark.parametrize(
    "models",
    [["m1", "no-such-model"], ["no-such-model", "m1"], ["m1", "delta/m1"]],
    ids=["second", "first", "slug-without-that-provider"],
)
def test_an_unknown_model_anywhere_is_not_found(models: list[str]) -> None:
    with pytest.raises(ModelNotFound) as caught:
        plan_for({"models": models})
    assert caught.value.status == 404
    assert caught.value.code == "model_not_found"


def test_a_provider_slug_pins_that_provider() -> None:
    plan = plan_for({"model": "gamma/m1"})
    assert order_of(plan) == ["m1:gamma"]
    assert plan.candidates[0].id == "gamma/m1-gamma"
    assert order_of(plan_for({"models": ["alpha/m2", "m1"]}))[:2] == ["m2:alpha", "m1:beta"]


@pytest.mark.parametrize(
    ("body", "strategy", "order"),
    [
        ({"model": "m1"}, "balanced", None),
        ({"model": "m1:floor"}, "cost", ["m1:beta", "m1:gamma", "m1:alpha"]),
        ({"model": "m1:nitro"}, "latency", ["m1:alpha", "m1:gamma", "m1:beta"]),
        ({"model": "gamma/m1:floor"}, "cost", ["m1:gamma"]),
        ({"model": "m1", "provider": {"sort": "price"}}, "cost", None),
        ({"model": "m1", "provider": {"sort": "latency"}}, "latency", None),
        ({"model": "m1:floor", "routing": {"strategy": "latency"}}, "latency", None),
        (
            {"model": "m1", "routing": {"strategy": "throughput"}, "provider": {"sort": "price"}},
            "throughput",
            None,
        ),
        ({"models": ["m1", "m2:nitro"]}, "balanced", None),  # the first model's suffix rules
    ],
    ids=[
        "config-default",
        "floor",
        "nitro",
        "slug-and-suffix",
        "sort-price",
        "sort-latency",
        "routing-strategy-beats-suffix",
        "routing-strategy-beats-sort",
        "second-models-suffix-ignored",
    ],
)
def test_strategy_of_the_request(
    body: dict[str, Any], strategy: Strategy, order: list[str] | None
) -> None:
    plan = plan_for(body, strategy="balanced")
    assert plan.strategy == strategy
    if order is not None:
        assert order_of(plan) == order


def test_a_live_price_changes_the_cost_order_and_the_planned_price() -> None:
    cheap = PriceOverride(input_per_mtok=0.1, output_per_mtok=0.2)
    plan = plan_for({"models": ["m1", "m2"]}, prices={price_key("m1", "alpha"): cheap})
    assert order_of(plan) == [
        "m1:alpha",
        "m1:beta",
        "m1:gamma",
        "m2:alpha",
        "m2:gamma",
        "m2:beta",
    ]
    assert plan.candidates[0].deployment.prices == Prices(
        input_per_mtok=0.1, output_per_mtok=0.2, cached_input_per_mtok=0.1
    )
    # the other model's deployment on the same provider keeps its configured price
    assert plan.candidates[3].deployment.prices.input_per_mtok == M2_PRICES["alpha"]
    cached = PriceOverride(input_per_mtok=0.1, output_per_mtok=0.2, cached_input_per_mtok=0.01)
    repriced = plan_for({"model": "m1"}, prices={price_key("m1", "alpha"): cached})
    assert repriced.candidates[0].deployment.prices.cached_input_per_mtok == 0.01


def test_a_live_price_is_checked_against_max_price() -> None:
    dear = PriceOverride(input_per_mtok=9.0, output_per_mtok=9.0)
    body = {"model": "m1", "routing": {"max_price": {"prompt": 2.5}}}
    assert order_of(plan_for(body)) == ["m1:beta", "m1:gamma"]
    with pytest.raises(
        NoCandidate, match=re.escape("beta/m1 input price 9 over max_price.prompt 2.5")
    ):
        plan_for(
            {"model": "m1", "routing": {"only": ["beta"], "max_price": {"prompt": 2.5}}},
            prices={price_key("m1", "beta"): dear},
        )
