"""Strategies: order candidate deployments by what the request wants. Pure functions of
(statistics, prices, request shape, strategy): no I/O, no clock, so they are table-tested.

- `cost`: expected USD = prompt tokens * input price + expected completion * output price.
- `latency`: expected ms to the last token = TTFT + expected completion / throughput
  (or the observed whole-answer latency where streams have not measured TTFT), times
  the load, 1 + (in flight / capacity)^2, so that a burst spreads instead of piling onto
  one (in every strategy that weighs latency; squared so that the few requests a steady
  load keeps in flight on the best hardly count), times (1 + error estimate) for the
  retries a failing deployment costs.
- `throughput`: highest observed output tokens per second.
- `balanced`: weights * (cost and latency normalized to 0..1 across the candidates,
  cheapest/fastest 0) + weight * error estimate; lowest wins.

The error estimate is the recent (time-decayed) error rate shrunk towards 0 by a prior
of `ERROR_PRIOR` successful tries, so that two failures on little evidence are not yet
a rate; without recent data, the window's error rate.

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
ERROR_PRIOR = 5.0  # pseudo-tries without failure that the error estimate starts from


class RequestShape(msgspec.Struct, frozen=True, kw_only=True):
    prompt_tokens: int
    completion_limit: int | None = None  # max_tokens / max_completion_tokens


class Scored(msgspec.Struct, frozen=True, kw_only=True):
    """What a strategy needs to know of one candidate."""

    prices: Prices
    stats: DeploymentStats
    in_flight: int = 0  # requests on it now, every replica's
    capacity: float = 32.0  # in flight at which its expected latency counts double


def error_estimate(stats: DeploymentStats) -> float:
    """The share of tries expected to fail, on the recent evidence."""
    if stats.recent_error_rate is None:
        return stats.error_rate
    evidence = stats.recent_requests
    return stats.recent_error_rate * evidence / (evidence + ERROR_PRIOR)


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
    """Expected ms under the candidate's load (see the module's docstring)."""
    unknown = _unknown_completion(candidates)
    filled = _filled([expected_latency_ms(shape, c.stats, unknown) for c in candidates])
    return [ms * load_factor(c) for ms, c in zip(filled, candidates, strict=True)]


def load_factor(candidate: Scored) -> float:
    """How much its requests in flight slow a deployment down, as routing counts it:
    +6 % at a quarter of its capacity, double at its capacity, x5 at twice."""
    share = candidate.in_flight / candidate.capacity
    return 1 + share * share


def _with_retries(latencies: list[float], candidates: Sequence[Scored]) -> list[float]:
    return [ms * (1 + error_estimate(c.stats)) for ms, c in zip(latencies, candidates, strict=True)]


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
        return _with_retries(_latencies(shape, candidates), candidates)
    if strategy == "throughput":
        return [-v for v in _filled([c.stats.tokens_per_second for c in candidates])]
    return _balanced(shape, candidates, weights).values


class _Balanced:
    """The balanced scores and what went into them, for optimistic re-scoring."""

    def __init__(self, costs: list[float], latencies: list[float], errors: list[float]) -> None:
        self.costs = costs  # normalized
        self.latencies = latencies  # raw ms (with load and retries)
        self.errors = errors
        self.low = min(latencies)
        self.span = max(latencies) - self.low
        # what an optimistic latency is measured against when the candidates all look
        # alike (none measured yet, say): their own latency, so that probing still sees
        # what a faster one would gain
        self.scale = self.span if self.span > 0 else self.low
        self.values: list[float] = []

    def latency_term(self, ms: float) -> float:
        return (ms - self.low) / self.scale if self.scale > 0 else 0.0


def _balanced(
    shape: RequestShape, candidates: Sequence[Scored], weights: BalancedWeights
) -> _Balanced:
    parts = _Balanced(
        _normalized(_costs(shape, candidates)),
        _latencies(shape, candidates),
        [error_estimate(c.stats) for c in candidates],
    )
    low, span = parts.low, parts.span
    w_cost, w_latency, w_errors = weights.cost, weights.latency, weights.errors
    scale = w_latency / span if span > 0 else 0.0
    parts.values = [
        w_cost * cost + scale * (ms - low) + w_errors * error
        for cost, ms, error in zip(parts.costs, parts.latencies, parts.errors, strict=True)
    ]
    return parts


class Ranking:
    """Candidates' scores (lower is better) and their order, best first; `optimistic`
    re-scores one as if its latency and error rate were `optimism` times what they
    were measured (exploration's question: could it be the best now?)."""

    def __init__(
        self,
        strategy: Strategy,
        shape: RequestShape,
        candidates: Sequence[Scored],
        weights: BalancedWeights,
    ) -> None:
        self._strategy = strategy
        self._weights = weights
        self._balanced: _Balanced | None = None
        self._latencies: list[float] = []  # expected ms under load, without retries
        self._throughputs: list[float] = []
        if strategy == "balanced" and candidates:
            self._balanced = _balanced(shape, candidates, weights)
            self.values = self._balanced.values
        elif strategy == "latency":
            self._latencies = _latencies(shape, candidates)
            self.values = _with_retries(self._latencies, candidates)
        elif strategy == "throughput":
            self._throughputs = _filled([c.stats.tokens_per_second for c in candidates])
            self.values = [-v for v in self._throughputs]
        else:
            self.values = scores(strategy, shape, candidates, weights)
        self.order = sorted(range(len(candidates)), key=self.values.__getitem__)

    def optimistic(self, index: int, optimism: float, *, healthy: bool = False) -> float:
        """`index`'s score were it `optimism` (0..1) times as slow and as failing (not
        failing at all if `healthy`); prices are known, so a cost score has nothing to
        be optimistic about."""
        if self._strategy == "latency":
            if healthy:
                return self._latencies[index] * optimism
            return self.values[index] * optimism
        if self._strategy == "throughput":
            return -self._throughputs[index] / max(optimism, 1e-9)
        parts = self._balanced
        if parts is None:
            return self.values[index]
        weights = self._weights
        errors = 0.0 if healthy else parts.errors[index] * optimism
        return (
            weights.cost * parts.costs[index]
            + weights.latency * parts.latency_term(parts.latencies[index] * optimism)
            + weights.errors * errors
        )


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
