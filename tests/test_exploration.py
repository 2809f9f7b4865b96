"""Probing, on a fake clock: which deployment is tried first to learn about it, when, and
how often. No randomness: the same statistics and times give the same probes."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest

from gateway.chat_decoding import decode_chat_body
from providers.base import Provider
from providers.capabilities import Capabilities
from providers.simulated.adapter import SimulatedProvider
from providers.simulated.config import SimulatedConfig
from routing.config import BalancedWeights, ExplorationConfig, RoutingConfig, Strategy
from routing.deployments import Deployment, Prices
from routing.exploration import Explorer
from routing.plan import Plan, Planner
from routing.resolution import ModelResolver
from routing.scoring import Ranking, RequestShape, Scored
from routing.stats import DeploymentStats, Snapshot, deployment_id

NOW = 1_700_000_000.0
CONFIG = ExplorationConfig(share=1.0, optimism_half_life=2.0, health_interval=2.0)
SHAPE = RequestShape(prompt_tokens=100, completion_limit=100)
IDS = ["best", "other"]


def seen(ago: float | None, latency_ms: float | None = None, **stats: Any) -> DeploymentStats:
    return DeploymentStats(
        requests=50,
        last_seen=None if ago is None else NOW - ago,
        latency_ms=latency_ms,
        **stats,
    )


def probe_of(
    explorer: Explorer,
    stats: list[DeploymentStats],
    strategy: Strategy = "latency",
    prices: tuple[float, ...] = (1.0, 1.0),
    now: float = NOW,
    avoided: set[int] | None = None,
) -> int | None:
    scored = [
        Scored(prices=Prices(input_per_mtok=p, output_per_mtok=p, cached_input_per_mtok=p), stats=s)
        for p, s in zip(prices, stats, strict=True)
    ]
    ranking = Ranking(strategy, SHAPE, scored, BalancedWeights())
    avoided = avoided or set()
    # as the planner orders them: those failing too often after the others
    order = [i for i in ranking.order if i not in avoided] + sorted(avoided)
    return explorer.pick(IDS, stats, ranking, order, avoided, strategy, now)


@pytest.mark.parametrize(
    ("slower", "due_after"),
    [(2.0, 2.0), (4.0, 4.0), (1.25, 2.0 * 0.32193)],  # log2(slower) half-lives
    ids=["twice-as-slow", "four-times", "nearly-as-good"],
)
def test_a_slower_deployment_is_probed_once_its_staleness_could_make_it_the_best(
    slower: float, due_after: float
) -> None:
    best = seen(0.0, 300.0)
    assert probe_of(Explorer(CONFIG), [best, seen(due_after - 0.01, 300.0 * slower)]) is None
    assert probe_of(Explorer(CONFIG), [best, seen(due_after + 0.01, 300.0 * slower)]) == 1


def test_a_probe_in_flight_counts_as_news() -> None:
    explorer = Explorer(CONFIG)
    stale = [seen(0.0, 300.0), seen(10.0, 600.0)]
    assert probe_of(explorer, stale) == 1
    assert probe_of(explorer, stale, now=NOW + 1.9) is None  # probed 1.9 s ago: not yet
    assert probe_of(explorer, stale, now=NOW + 2.1) == 1  # one half-life after the probe


def test_a_deployment_never_seen_is_probed_at_once() -> None:
    assert probe_of(Explorer(CONFIG), [seen(0.0, 300.0), DeploymentStats()]) == 1


@pytest.mark.parametrize("ago", [None, 5.0, 3600.0])
def test_cost_never_probes_a_dearer_deployment(ago: float | None) -> None:
    stats = [seen(0.0, 900.0), seen(ago, 100.0) if ago else DeploymentStats()]
    assert probe_of(Explorer(CONFIG), stats, "cost", prices=(1.0, 2.0)) is None


def test_a_failing_deployment_gets_health_probes_only_where_it_would_win() -> None:
    # under cost, a cheaper deployment avoided for its errors: probed every health_interval
    explorer = Explorer(CONFIG)
    failing = seen(1.0, 300.0, recent_error_rate=0.5, recent_requests=30.0)
    stats = [seen(0.0, 300.0), failing]
    assert probe_of(explorer, stats, "cost", prices=(2.0, 1.0), avoided={1}) is None
    failing = msgspec.structs.replace(failing, last_seen=NOW - 2.5)
    assert probe_of(explorer, [stats[0], failing], "cost", (2.0, 1.0), avoided={1}) == 1
    # a dearer one would not be chosen even healthy: never
    again = Explorer(CONFIG)
    assert probe_of(again, [stats[0], failing], "cost", (1.0, 2.0), avoided={1}) is None


def test_the_budget_caps_probes_at_the_share() -> None:
    explorer = Explorer(msgspec.structs.replace(CONFIG, share=0.1))
    picks = [
        probe_of(explorer, [seen(0.0, 300.0), DeploymentStats()], now=NOW + i)  # always due
        for i in range(100)
    ]
    assert sum(p is not None for p in picks) == 10
    off = Explorer(msgspec.structs.replace(CONFIG, share=0.0))
    assert probe_of(off, [seen(0.0, 300.0), DeploymentStats()]) is None


# --- in the plan ----------------------------------------------------------------------

PROVIDERS = ("alpha", "beta", "gamma", "delta")


def deployments(model: str) -> list[Deployment]:
    """Cost order = config order: alpha (1), beta (2), gamma (3), delta (4)."""
    return [
        Deployment(
            provider=name,
            model=f"{model}-{name}",
            prices=Prices(input_per_mtok=i, output_per_mtok=i, cached_input_per_mtok=i),
            capabilities=Capabilities(),
        )
        for i, name in enumerate(PROVIDERS, start=1)
    ]


MODELS = {"m1": deployments("m1"), "m2": deployments("m2")}
FRESH = seen(0.0, 300.0)  # measured just now: nothing to learn


def plan(body: dict[str, Any], stats: dict[str, DeploymentStats], strategy: Strategy) -> Plan:
    by_id = {
        deployment_id(d.provider, d.model): stats.get(d.provider, FRESH)
        for model in MODELS.values()
        for d in model
    }
    providers: dict[str, Provider] = {
        name: SimulatedProvider(name, SimulatedConfig()) for name in PROVIDERS
    }
    routing = RoutingConfig(strategy=strategy, exploration=CONFIG)
    planner = Planner(providers, ModelResolver(MODELS), routing, random.Random(0))
    request, options = decode_chat_body(
        msgspec.json.encode({"messages": [{"role": "user", "content": "hi"}], **body})
    )
    return planner.plan(request, options, Snapshot(taken_at=NOW, stats=by_id), NOW)


def order_of(plan: Plan) -> list[str]:
    return [f"{c.canonical}:{c.deployment.provider}" for c in plan.candidates]


def test_the_plan_probes_first_then_the_ranked_rest_in_the_first_model_only() -> None:
    probed = plan({"models": ["m1", "m2"]}, {"gamma": DeploymentStats()}, "latency")
    assert probed.explored is True
    assert order_of(probed)[:4] == ["m1:gamma", "m1:alpha", "m1:beta", "m1:delta"]
    assert order_of(probed)[4:] == ["m2:alpha", "m2:beta", "m2:gamma", "m2:delta"]  # no probe


def test_the_plan_ranks_a_failing_deployment_last_and_never_probes_under_cost() -> None:
    failing = seen(0.0, 300.0, recent_error_rate=0.6, recent_requests=40.0)
    ranked = plan({"model": "m1"}, {"alpha": failing, "delta": DeploymentStats()}, "cost")
    assert (ranked.explored, order_of(ranked)) == (
        False,
        ["m1:beta", "m1:gamma", "m1:delta", "m1:alpha"],
    )


def test_the_clients_order_is_never_overridden_by_exploration() -> None:
    ordered = plan(
        {"model": "m1", "routing": {"order": ["beta"]}}, {"delta": DeploymentStats()}, "latency"
    )
    assert ordered.explored is False
    assert order_of(ordered)[0] == "m1:beta"
