"""Strategies: order candidate deployments by what the request wants. Pure functions of
(statistics, prices, request shape, strategy): no I/O, no clock, so they are table-tested.

- `cost`: expected USD = prompt tokens * input price + expected completion * output price.
- `latency`: expected ms to the last token = TTFT + expected completion / throughput
  (or the observed whole-answer latency where streams have not measured TTFT).
- `throughput`: highest observed output tokens per second.
- `balanced`: weights * (cost and latency normalized to 0..1 across the candidates,
  cheapest/fastest 0) + weight * error rate; lowest wins.

A deployment with no data on a metric scores as the mean of those with data, so that
exploration, not an arbitrary optimism or pessimism, decides whether it gets tried.
Ties keep the config's order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import msgspec

from routing.config import BalancedWeights, Strategy
from routing.deployments import Prices
from routing.stats import DeploymentStats

T = TypeVar("T")
DEFAULT_COMPLETION_TOKENS = 256  # when neither the request nor the history says


class RequestShape(msgspec.Struct, frozen=True, kw_only=True):
    prompt_tokens: int
    completion_limit: int | None = None  # max_tokens / max_completion_tokens


class Scored(msgspec.Struct, frozen=True, kw_only=True):
    """What a strategy needs to know of one candidate."""

    prices: Prices
    stats: DeploymentStats


def expected_completion_tokens(
    shape: RequestShape, stats: DeploymentStats, unknown: float = DEFAULT_COMPLETION_TOKENS
) -> float:
    """The request's cap, else this deployment's observed average, else `unknown` (in a
    ranking: the other candidates' average, so that no data is neither cheap nor dear)."""
    if shape.completion_limit is not None:
        return float(shape.completion_limit)
    if stats.completion_tokens is not None:
        return stats.completion_tokens
    return unknown


def expected_cost(
    shape: RequestShape, candidate: Scored, unknown: float = DEFAULT_COMPLETION_TOKENS
) -> float:
    completion = expected_completion_tokens(shape, candidate.stats, unknown)
    prices = candidate.prices
    return (shape.prompt_tokens * prices.input_per_mtok + completion * prices.output_per_mtok) / 1e6


def expected_latency_ms(
    shape: RequestShape, stats: DeploymentStats, unknown: float = DEFAULT_COMPLETION_TOKENS
) -> float | None:
    if stats.ttft_ms is not None and stats.tokens_per_second:
        tokens = expected_completion_tokens(shape, stats, unknown)
        return stats.ttft_ms + tokens / stats.tokens_per_second * 1000
    return stats.latency_ms


def _unknown_completion(candidates: Sequence[Scored]) -> float:
    """For a deployment with no history: the others' average completion length."""
    known = [c.stats.completion_tokens for c in candidates if c.stats.completion_tokens is not None]
    return sum(known) / len(known) if known else float(DEFAULT_COMPLETION_TOKENS)


def _costs(shape: RequestShape, candidates: Sequence[Scored]) -> list[float]:
    unknown = _unknown_completion(candidates)
    return [expected_cost(shape, c, unknown) for c in candidates]


def _latencies(shape: RequestShape, candidates: Sequence[Scored]) -> list[float]:
    unknown = _unknown_completion(candidates)
    return _filled([expected_latency_ms(shape, c.stats, unknown) for c in candidates])


def _filled(values: list[float | None]) -> list[float]:
    """Unknowns take the mean of the known (all unknown: all equal)."""
    known = [v for v in values if v is not None]
    mean = sum(known) / len(known) if known else 0.0
    return [mean if v is None else v for v in values]


def _normalized(values: list[float]) -> list[float]:
    low, high = min(values), max(values)
    span = high - low
    return [(v - low) / span if span > 0 else 0.0 for v in values]


def scores(
    strategy: Strategy,
    shape: RequestShape,
    candidates: Sequence[Scored],
    weights: BalancedWeights,
) -> list[float]:
    """One score per candidate, in the same order; lower is better."""
    if not candidates:
        return []
    if strategy == "cost":
        return _costs(shape, candidates)
    if strategy == "latency":
        return _latencies(shape, candidates)
    if strategy == "throughput":
        return [-v for v in _filled([c.stats.tokens_per_second for c in candidates])]
    costs = _normalized(_costs(shape, candidates))
    latencies = _normalized(_latencies(shape, candidates))
    return [
        weights.cost * cost + weights.latency * latency + weights.errors * c.stats.error_rate
        for cost, latency, c in zip(costs, latencies, candidates, strict=True)
    ]


def ranked(
    items: Sequence[T],
    key: Callable[[T], Scored],
    strategy: Strategy,
    shape: RequestShape,
    weights: BalancedWeights,
) -> list[T]:
    """`items` best first (a stable sort: ties keep their order)."""
    if len(items) < 2:
        return list(items)  # the common one-deployment model: nothing to score
    values = scores(strategy, shape, [key(item) for item in items], weights)
    order = sorted(range(len(items)), key=values.__getitem__)
    return [items[i] for i in order]
