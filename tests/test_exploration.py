"""Exploration under a fixed seed: which deployments count as unexplored, how often one is
moved first, and how the plan applies it."""

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
from routing.config import ExplorationConfig, RoutingConfig
from routing.deployments import Deployment, Prices
from routing.exploration import pick_exploration, unexplored
from routing.plan import Plan, Planner
from routing.resolution import ModelResolver
from routing.stats import DeploymentStats, Snapshot, deployment_id

NOW = 1_700_000_000.0
CONFIG = ExplorationConfig(share=0.05, min_samples=3, stale_after=30.0)
FRESH = DeploymentStats(requests=10, last_seen=NOW - 1)
NEW = DeploymentStats()  # never seen
FEW = DeploymentStats(requests=2, last_seen=NOW - 1)  # under min_samples
STALE = DeploymentStats(requests=10, last_seen=NOW - 31)  # not seen for over stale_after


def config(share: float) -> ExplorationConfig:
    return msgspec.structs.replace(CONFIG, share=share)


@pytest.mark.parametrize(
    ("stats", "expected"),
    [
        (NEW, True),
        (DeploymentStats(requests=2, last_seen=NOW), True),
        (DeploymentStats(requests=3, last_seen=NOW), False),
        (DeploymentStats(requests=10), True),  # counted, but never a time: no data
        (DeploymentStats(requests=10, last_seen=NOW - 30), False),  # exactly stale_after
        (DeploymentStats(requests=10, last_seen=NOW - 30.001), True),
        (DeploymentStats(requests=1000, last_seen=NOW - 3600), True),
    ],
    ids=[
        "never-seen",
        "under-min-samples",
        "at-min-samples",
        "no-last-seen",
        "at-stale-after",
        "just-stale",
        "long-stale-many-requests",
    ],
)
def test_unexplored(stats: DeploymentStats, expected: bool) -> None:
    assert unexplored(stats, CONFIG, NOW) is expected


@pytest.mark.parametrize("seed", range(5))
def test_share_zero_never_explores(seed: int) -> None:
    draw = random.Random(seed)
    stats = [NEW, NEW, FEW, STALE]
    assert all(pick_exploration(stats, config(0.0), draw, NOW) is None for _ in range(1000))


@pytest.mark.parametrize("seed", range(5))
def test_share_one_always_moves_an_unexplored_one_first(seed: int) -> None:
    draw = random.Random(seed)
    stats = [NEW, FRESH, FEW, FRESH, STALE]  # index 0 is first already
    picks = [pick_exploration(stats, config(1.0), draw, NOW) for _ in range(300)]
    assert set(picks) == {2, 4}  # every draw explores, never 0, never a fresh one


@pytest.mark.parametrize(
    "stats",
    [
        [FRESH, FRESH, FRESH],
        [NEW, FRESH, FRESH],  # only the first is unexplored, and it is first already
        [NEW],
        [],
    ],
    ids=["all-fresh", "only-first-unexplored", "one", "none"],
)
def test_nothing_to_explore(stats: list[DeploymentStats]) -> None:
    draw = random.Random(1)
    assert all(pick_exploration(stats, config(1.0), draw, NOW) is None for _ in range(100))


def test_stale_counts_as_unexplored() -> None:
    draw = random.Random(3)
    assert pick_exploration([FRESH, FRESH, STALE], config(1.0), draw, NOW) == 2
    # the same numbers, seen 20 s later than the stale ones: fresh again
    recent = DeploymentStats(requests=10, last_seen=NOW - 11)
    assert pick_exploration([FRESH, FRESH, recent], config(1.0), draw, NOW) is None


def explored_in(draws: int, seed: int, share: float) -> list[int | None]:
    draw = random.Random(seed)
    stats = [FRESH, NEW, NEW, NEW]
    return [pick_exploration(stats, config(share), draw, NOW) for _ in range(draws)]


def test_the_explored_share_is_the_configured_share() -> None:
    fractions = []
    for seed in range(5):
        picks = explored_in(10_000, seed, 0.05)
        fraction = sum(p is not None for p in picks) / len(picks)
        assert abs(fraction - 0.05) <= 0.01, (seed, fraction)
        fractions.append(fraction)
        # and spread over every unexplored deployment
        assert {p for p in picks if p is not None} == {1, 2, 3}
    assert abs(sum(fractions) / len(fractions) - 0.05) <= 0.004, fractions


def test_the_same_seed_gives_the_same_draws() -> None:
    assert explored_in(2000, 11, 0.05) == explored_in(2000, 11, 0.05)
    assert explored_in(2000, 11, 0.05) != explored_in(2000, 12, 0.05)


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


def plan(
    body: dict[str, Any], unexplored_providers: set[str], seed: int = 0, share: float = 1.0
) -> Plan:
    stats = {
        deployment_id(d.provider, d.model): NEW if d.provider in unexplored_providers else FRESH
        for model in MODELS.values()
        for d in model
    }
    providers: dict[str, Provider] = {
        name: SimulatedProvider(name, SimulatedConfig()) for name in PROVIDERS
    }
    routing = RoutingConfig(strategy="cost", exploration=config(share))
    planner = Planner(providers, ModelResolver(MODELS), routing, random.Random(seed))
    request, options = decode_chat_body(
        msgspec.json.encode({"messages": [{"role": "user", "content": "hi"}], **body})
    )
    return planner.plan(request, options, Snapshot(taken_at=NOW, stats=stats), NOW)


def order_of(plan: Plan) -> list[str]:
    return [f"{c.canonical}:{c.deployment.provider}" for c in plan.candidates]


@pytest.mark.parametrize("seed", range(3))
def test_the_plan_tries_an_unexplored_deployment_first_then_the_ranked_rest(seed: int) -> None:
    explored = plan({"models": ["m1", "m2"]}, {"gamma"}, seed)
    assert explored.explored is True
    # gamma moved first in the first model only; the second model keeps the cost order
    assert order_of(explored) == [
        "m1:gamma",
        "m1:alpha",
        "m1:beta",
        "m1:delta",
        "m2:alpha",
        "m2:beta",
        "m2:gamma",
        "m2:delta",
    ]


def test_the_plan_does_not_explore_when_all_is_fresh_or_the_share_is_zero() -> None:
    ranked = ["m1:alpha", "m1:beta", "m1:gamma", "m1:delta"]
    fresh = plan({"model": "m1"}, set())
    assert (fresh.explored, order_of(fresh)) == (False, ranked)
    off = plan({"model": "m1"}, {"beta", "gamma", "delta"}, share=0.0)
    assert (off.explored, order_of(off)) == (False, ranked)


def test_the_clients_order_is_never_overridden_by_exploration() -> None:
    ordered = plan({"model": "m1", "routing": {"order": ["beta"]}}, {"delta"})
    assert ordered.explored is False
    assert order_of(ordered) == ["m1:beta", "m1:alpha", "m1:gamma", "m1:delta"]
