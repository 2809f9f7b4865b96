"""How long one routing decision takes: `Planner.plan` on a populated snapshot.

For 3, 30 and 300 deployments of one model, and 300 deployments over 10 models with a
`models[]` of 3 names, under each strategy, it times single decisions with
`time.perf_counter_ns` after a warm-up, and also `Router.plan` end to end (the metrics
store's snapshot and clock included) for 3 deployments. Every deployment has statistics,
seen in the last few seconds, and every decision scores every candidate and asks whether
one is due for a probe (the probe budget lets about one request in twenty through).

Prints a table (median and p99 µs per decision) and writes the same numbers as JSON to
`bench/results/routing_decision.json`. `--scale 0.1` runs a tenth of the iterations
(a smoke run); `--profile CASE` prints a cProfile of one case instead.

    .venv/bin/python bench/routing_decision.py [--scale X] [--profile 300x1/cost]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import platform
import pstats
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from gateway.chat_decoding import decode_chat_body
from providers.base import Provider
from providers.capabilities import Capabilities
from providers.chat_types import ChatRequest
from providers.simulated.adapter import SimulatedProvider
from providers.simulated.config import SimulatedConfig
from routing.config import RoutingConfig, Strategy
from routing.deployments import Deployment, Prices
from routing.options import RouteOptions
from routing.plan import Planner
from routing.resolution import ModelResolver
from routing.router import Router
from routing.stats import DeploymentStats, Outcome, Snapshot, deployment_id
from routing.store.base import MetricsStore

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "routing_decision.json"
STRATEGIES: tuple[Strategy, ...] = ("cost", "latency", "throughput", "balanced")
NOW = time.time()

# a typical chat request: a system prompt, a question, sampling and a token limit
SYSTEM = (
    "You are a concise assistant for an engineering team. Answer with code where it "
    "helps, cite the file you mean, and say when you are unsure. " * 3
)
QUESTION = "How do I make the retry loop stop at the request's deadline, not after it? " * 4


@dataclass(frozen=True)
class Case:
    name: str  # e.g. 300x10
    deployments: int  # in all
    models: int  # the deployments are spread evenly over this many models
    asked: int  # names in the request's `models[]`
    iterations: int


CASES = (
    Case("3x1", 3, 1, 1, 5000),
    Case("30x1", 30, 1, 1, 3000),
    Case("300x1", 300, 1, 1, 600),
    Case("300x10", 300, 10, 3, 600),
)


def deployments_of(case: Case) -> dict[str, list[Deployment]]:
    """`models` models, each on its share of `deployments` providers, prices spread out."""
    per_model = case.deployments // case.models
    rng = random.Random(case.deployments * 100 + case.models)
    models: dict[str, list[Deployment]] = {}
    for m in range(case.models):
        models[f"model-{m}"] = [
            Deployment(
                provider=f"provider-{p}",
                model=f"model-{m}-on-{p}",
                prices=Prices(
                    input_per_mtok=round(rng.uniform(0.1, 5), 3),
                    output_per_mtok=round(rng.uniform(0.2, 15), 3),
                    cached_input_per_mtok=0.05,
                ),
                capabilities=Capabilities(context_window=128_000, max_output_tokens=8192),
            )
            for p in range(per_model)
        ]
    return models


def stats_for(rng: random.Random) -> DeploymentStats:
    requests = rng.randint(20, 400)
    errors = rng.randint(0, requests // 10)
    latency = rng.uniform(200, 3000)
    return DeploymentStats(
        requests=requests,
        errors=errors,
        error_rate=errors / requests,
        latency_ms=latency,
        latency_p50_ms=latency * 0.9,
        latency_p95_ms=latency * 2,
        ttft_ms=rng.uniform(50, 800),
        ttft_p95_ms=rng.uniform(800, 2000),
        tokens_per_second=rng.uniform(20, 300),
        completion_tokens=rng.uniform(100, 800),
        in_flight=rng.randint(0, 5),
        last_seen=NOW - rng.uniform(0, 5),
    )


def snapshot_of(models: dict[str, list[Deployment]]) -> Snapshot:
    rng = random.Random(7)
    stats = {
        deployment_id(d.provider, d.model): stats_for(rng)
        for deployments in models.values()
        for d in deployments
    }
    return Snapshot(taken_at=NOW, stats=stats)


def providers_of(models: dict[str, list[Deployment]]) -> dict[str, Provider]:
    names = {d.provider for deployments in models.values() for d in deployments}
    return {name: SimulatedProvider(name, SimulatedConfig()) for name in sorted(names)}


def request_for(case: Case, strategy: Strategy) -> tuple[ChatRequest, RouteOptions]:
    body: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": QUESTION},
        ],
        "max_tokens": 512,
        "temperature": 0.3,
        "stream": True,
        "routing": {"strategy": strategy},
    }
    names = [f"model-{m}" for m in range(case.asked)]
    if case.asked == 1:
        body["model"] = names[0]
    else:
        body["models"] = names
    return decode_chat_body(msgspec.json.encode(body))


def timed(decide: Callable[[], object], iterations: int) -> list[int]:
    """Nanoseconds per call, each timed alone, after a warm-up; no GC pauses counted."""
    for _ in range(max(50, iterations // 10)):
        decide()
    samples = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(iterations):
            start = time.perf_counter_ns()
            decide()
            samples.append(time.perf_counter_ns() - start)
    finally:
        gc.enable()
    return samples


def summary(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "median_us": round(statistics.median(ordered) / 1000, 2),
        "p99_us": round(p99 / 1000, 2),
        "mean_us": round(statistics.fmean(ordered) / 1000, 2),
    }


def planner_decision(case: Case, strategy: Strategy) -> Callable[[], object]:
    models = deployments_of(case)
    planner = Planner(
        providers_of(models),
        ModelResolver(models),
        RoutingConfig(strategy="balanced"),
        random.Random(0),
    )
    snapshot = snapshot_of(models)
    request, options = request_for(case, strategy)
    plan = planner.plan(request, options, snapshot, NOW)  # fails here, not mid-measurement
    assert len(plan.candidates) == case.deployments // case.models * case.asked
    return lambda: planner.plan(request, options, snapshot, NOW)


def router_decision(strategy: Strategy) -> Callable[[], object]:
    """`Router.plan` for 3 deployments, on a memory store fed with real outcomes."""
    case = CASES[0]
    models = deployments_of(case)
    store = MetricsStore()
    rng = random.Random(3)
    for deployment in models["model-0"]:
        key = deployment_id(deployment.provider, deployment.model)
        for i in range(30):
            ok = rng.random() > 0.05
            ttft = rng.uniform(0.05, 0.5)
            store.record(
                Outcome(
                    deployment=key,
                    at=time.time() - 30 + i,
                    ok=ok,
                    latency=ttft + rng.uniform(0.5, 2.0),
                    ttft=ttft if ok else None,
                    completion_tokens=rng.randint(100, 600) if ok else None,
                    error=None if ok else "upstream_unavailable",
                )
            )
    asyncio.run(store.sync())
    assert len(store.snapshot().stats) == 3
    router = Router(providers_of(models), ModelResolver(models), RoutingConfig(), store)
    request, options = request_for(case, strategy)
    plan = router.plan(request, options)
    assert len(plan.candidates) == 3
    return lambda: router.plan(request, options)


def run(scale: float) -> list[dict[str, Any]]:
    rows = []
    for case in CASES:
        for strategy in STRATEGIES:
            iterations = max(100, int(case.iterations * scale))
            samples = timed(planner_decision(case, strategy), iterations)
            rows.append(
                {
                    "what": "Planner.plan",
                    "case": case.name,
                    "deployments": case.deployments,
                    "models": case.models,
                    "models_asked": case.asked,
                    "strategy": strategy,
                    "iterations": iterations,
                    **summary(samples),
                }
            )
    for strategy in STRATEGIES:
        iterations = max(100, int(CASES[0].iterations * scale))
        samples = timed(router_decision(strategy), iterations)
        rows.append(
            {
                "what": "Router.plan",
                "case": "3x1",
                "deployments": 3,
                "models": 1,
                "models_asked": 1,
                "strategy": strategy,
                "iterations": iterations,
                **summary(samples),
            }
        )
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'what':<13} {'case':<7} {'strategy':<11} {'iters':>6} {'median µs':>10} {'p99 µs':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['what']:<13} {row['case']:<7} {row['strategy']:<11} {row['iterations']:>6} "
            f"{row['median_us']:>10.1f} {row['p99_us']:>9.1f}"
        )
    print(
        "\ncase NxM: N deployments over M models; 300x10 asks for models[] of 3 "
        "(90 candidates scored)"
    )


def profile(name: str) -> None:
    case_name, _, strategy_name = name.partition("/")
    case = next((c for c in CASES if c.name == case_name), None)
    strategies: dict[str, Strategy] = {s: s for s in STRATEGIES}
    strategy = strategies.get(strategy_name or "balanced")
    if case is None or strategy is None:
        sys.exit(f"--profile: expected CASE/STRATEGY, CASE in {[c.name for c in CASES]}")
    decide = planner_decision(case, strategy)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(case.iterations):
        decide()
    profiler.disable()
    stats = pstats.Stats(profiler).strip_dirs().sort_stats("tottime")
    stats.print_stats(20)
    stats.sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the iterations")
    parser.add_argument("--profile", metavar="CASE/STRATEGY", help="e.g. 300x1/balanced")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.profile:
        profile(args.profile)
        return
    rows = run(args.scale)
    print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_before": os.getloadavg(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    shown = args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out
    print(f"\nwritten to {shown}")


if __name__ == "__main__":
    main()
