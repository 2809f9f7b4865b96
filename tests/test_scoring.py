"""Strategies, table-tested: every expected number is worked out by hand in the comments."""

from __future__ import annotations

from typing import Any

import pytest

from routing.config import BalancedWeights, Strategy
from routing.deployments import Prices
from routing.scoring import (
    RequestShape,
    Scored,
    expected_cost,
    expected_latency_ms,
    ranked,
    scores,
)
from routing.stats import DeploymentStats

# the tables are hand-computed with these weights (the shipped default weighs errors 1.0)
DEFAULT_WEIGHTS = BalancedWeights(cost=0.4, latency=0.4, errors=0.2)


def cand(
    input_price: float = 1.0,
    output_price: float = 1.0,
    **stats: Any,
) -> Scored:
    prices = Prices(
        input_per_mtok=input_price, output_per_mtok=output_price, cached_input_per_mtok=input_price
    )
    return Scored(prices=prices, stats=DeploymentStats(**stats))


def names_ranked(
    strategy: Strategy,
    shape: RequestShape,
    candidates: dict[str, Scored],
    weights: BalancedWeights = DEFAULT_WEIGHTS,
) -> list[str]:
    """The candidates' names best first (the dict's order is the config's order)."""
    best_first = ranked(list(candidates.items()), lambda item: item[1], strategy, shape, weights)
    return [name for name, _ in best_first]


# --- cost -----------------------------------------------------------------------------

# prompt 1000 tokens; cheap_in: in 0.1, out 10 $/Mtok; cheap_out: in 10, out 0.1 $/Mtok
CHEAP_IN = {"input_price": 0.1, "output_price": 10.0}
CHEAP_OUT = {"input_price": 10.0, "output_price": 0.1}


@pytest.mark.parametrize(
    ("limit", "ewma_in", "ewma_out", "expected_usd", "order"),
    [
        # max_tokens 10: cheap_in (100 + 100)/1e6, cheap_out (10000 + 1)/1e6
        (10, None, None, (0.0002, 0.010001), ["cheap_in", "cheap_out"]),
        # max_tokens 10000: cheap_in (100 + 100000)/1e6, cheap_out (10000 + 1000)/1e6
        (10_000, None, None, (0.1001, 0.011), ["cheap_out", "cheap_in"]),
        # no limit: each deployment's completion EWMA, 10 tokens → as with max_tokens 10
        (None, 10.0, 10.0, (0.0002, 0.010001), ["cheap_in", "cheap_out"]),
        # no limit, EWMA 10000 tokens → as with max_tokens 10000
        (None, 10_000.0, 10_000.0, (0.1001, 0.011), ["cheap_out", "cheap_in"]),
        # the limit wins over the history: 10 tokens, not the EWMA's 10000
        (10, 10_000.0, 10_000.0, (0.0002, 0.010001), ["cheap_in", "cheap_out"]),
        # each deployment's own EWMA: cheap_in expects 5000 tokens, cheap_out 10
        # cheap_in (100 + 50000)/1e6, cheap_out (10000 + 1)/1e6
        (None, 5000.0, 10.0, (0.0501, 0.010001), ["cheap_out", "cheap_in"]),
        # neither limit nor history: 256 tokens; cheap_in (100 + 2560)/1e6,
        # cheap_out (10000 + 25.6)/1e6
        (None, None, None, (0.00266, 0.0100256), ["cheap_in", "cheap_out"]),
        # no history for cheap_in: it expects the others' average (10000), not 256
        (None, None, 10_000.0, (0.1001, 0.011), ["cheap_out", "cheap_in"]),
    ],
    ids=[
        "max_tokens-small",
        "max_tokens-large-flips",
        "ewma-small",
        "ewma-large-flips",
        "max_tokens-beats-ewma",
        "ewma-per-deployment",
        "default-256",
        "no-history-takes-the-others-mean",
    ],
)
def test_cost_is_the_expected_usd(
    limit: int | None,
    ewma_in: float | None,
    ewma_out: float | None,
    expected_usd: tuple[float, float],
    order: list[str],
) -> None:
    shape = RequestShape(prompt_tokens=1000, completion_limit=limit)
    candidates = {
        "cheap_in": cand(**CHEAP_IN, completion_tokens=ewma_in),
        "cheap_out": cand(**CHEAP_OUT, completion_tokens=ewma_out),
    }
    got = scores("cost", shape, list(candidates.values()), DEFAULT_WEIGHTS)
    assert got == pytest.approx(list(expected_usd), rel=1e-12)
    assert names_ranked("cost", shape, candidates) == order


def test_expected_cost_of_one_deployment() -> None:
    # prompt 1000 at 0.5 $/Mtok + completion at 2 $/Mtok
    one = cand(0.5, 2.0, completion_tokens=300.0)
    assert expected_cost(RequestShape(prompt_tokens=1000), one) == pytest.approx(0.0011)
    limited = RequestShape(prompt_tokens=1000, completion_limit=100)
    assert expected_cost(limited, one) == pytest.approx(0.0007)
    # no limit, no history: 256 tokens, or what the caller says the others expect
    blank = cand(0.5, 2.0)
    assert expected_cost(RequestShape(prompt_tokens=1000), blank) == pytest.approx(0.001012)
    assert expected_cost(RequestShape(prompt_tokens=1000), blank, 50.0) == pytest.approx(0.0006)


def test_no_completion_history_takes_the_mean_of_the_others() -> None:
    # prompt 0: cost is completion * output price only; a expects (100 + 300) / 2 = 200
    shape = RequestShape(prompt_tokens=0)
    candidates = [
        cand(1.0, 5.0),
        cand(1.0, 2.0, completion_tokens=100.0),
        cand(1.0, 1.0, completion_tokens=300.0),
    ]
    got = scores("cost", shape, candidates, DEFAULT_WEIGHTS)
    assert got == pytest.approx([200 * 5.0 / 1e6, 100 * 2.0 / 1e6, 300 * 1.0 / 1e6])


def test_cost_orders_three_by_price() -> None:
    # prompt 1000, max_tokens 500: a (1000 + 1000)/1e6, b (500 + 2000)/1e6, c (3000 + 500)/1e6
    shape = RequestShape(prompt_tokens=1000, completion_limit=500)
    candidates = {
        "c": cand(3.0, 1.0),
        "b": cand(0.5, 4.0),
        "a": cand(1.0, 2.0),
    }
    assert scores("cost", shape, list(candidates.values()), DEFAULT_WEIGHTS) == pytest.approx(
        [0.0035, 0.0025, 0.002]
    )
    assert names_ranked("cost", shape, candidates) == ["a", "b", "c"]


# --- latency --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "stats", "expected_ms"),
    [
        # 100 ms TTFT + 100 tokens at 50 tok/s (2000 ms)
        (100, {"ttft_ms": 100.0, "tokens_per_second": 50.0}, 2100.0),
        # no limit: the EWMA's 50 tokens at 100 tok/s (500 ms) + 100 ms
        (None, {"ttft_ms": 100.0, "tokens_per_second": 100.0, "completion_tokens": 50.0}, 600.0),
        # nothing on the length: 256 tokens at 128 tok/s (2000 ms) + 40 ms
        (None, {"ttft_ms": 40.0, "tokens_per_second": 128.0}, 2040.0),
        # no TTFT (non-streaming traffic only): the whole-answer latency
        (100, {"tokens_per_second": 50.0, "latency_ms": 750.0}, 750.0),
        # a throughput of 0 is no throughput: the whole-answer latency
        (100, {"ttft_ms": 100.0, "tokens_per_second": 0.0, "latency_ms": 900.0}, 900.0),
        # the TTFT path wins over latency_ms when both are known
        (100, {"ttft_ms": 100.0, "tokens_per_second": 50.0, "latency_ms": 9.0}, 2100.0),
        # nothing known
        (100, {}, None),
    ],
    ids=[
        "ttft+limit/tps",
        "ttft+ewma/tps",
        "ttft+default/tps",
        "no-ttft-latency",
        "zero-tps-latency",
        "ttft-beats-latency",
        "unknown",
    ],
)
def test_expected_latency(
    limit: int | None, stats: dict[str, Any], expected_ms: float | None
) -> None:
    shape = RequestShape(prompt_tokens=10, completion_limit=limit)
    got = expected_latency_ms(shape, DeploymentStats(**stats))
    assert got == (pytest.approx(expected_ms) if expected_ms is not None else None)


@pytest.mark.parametrize(
    ("candidates", "expected_ms", "order"),
    [
        (
            # slow: 200 + 100/100 tok/s = 1200; quick: latency 800; blank: mean (1000)
            {
                "slow": cand(ttft_ms=200.0, tokens_per_second=100.0),
                "quick": cand(latency_ms=800.0),
                "blank": cand(),
            },
            [1200.0, 800.0, 1000.0],
            ["quick", "blank", "slow"],
        ),
        (
            # only one known: the unknown ties with it and keeps its config place
            {"blank": cand(), "known": cand(latency_ms=300.0)},
            [300.0, 300.0],
            ["blank", "known"],
        ),
        (
            # nothing known: all equal, config order
            {"x": cand(), "y": cand(), "z": cand()},
            [0.0, 0.0, 0.0],
            ["x", "y", "z"],
        ),
    ],
    ids=["mixed-with-unknown", "one-known", "all-unknown"],
)
def test_latency_fastest_first_unknowns_take_the_mean(
    candidates: dict[str, Scored], expected_ms: list[float], order: list[str]
) -> None:
    shape = RequestShape(prompt_tokens=10, completion_limit=100)
    got = scores("latency", shape, list(candidates.values()), DEFAULT_WEIGHTS)
    assert got == pytest.approx(expected_ms)
    assert names_ranked("latency", shape, candidates) == order


# --- throughput -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tps", "expected", "order"),
    [
        ({"a": 50.0, "b": 150.0, "c": 90.0}, [-50.0, -150.0, -90.0], ["b", "c", "a"]),
        # unknown c takes the mean of 50 and 150
        ({"a": 50.0, "b": 150.0, "c": None}, [-50.0, -150.0, -100.0], ["b", "c", "a"]),
        ({"a": 80.0, "b": 80.0, "c": 20.0}, [-80.0, -80.0, -20.0], ["a", "b", "c"]),
    ],
    ids=["known", "unknown-is-mean", "tie-keeps-order"],
)
def test_throughput_highest_first(
    tps: dict[str, float | None], expected: list[float], order: list[str]
) -> None:
    shape = RequestShape(prompt_tokens=10)
    candidates = {name: cand(tokens_per_second=value) for name, value in tps.items()}
    assert scores("throughput", shape, list(candidates.values()), DEFAULT_WEIGHTS) == (
        pytest.approx(expected)
    )
    assert names_ranked("throughput", shape, candidates) == order


# --- balanced -------------------------------------------------------------------------

# prompt 1000, max_tokens 1000 (input and output at the same price p: cost = 2000 p / 1e6)
BALANCED_SHAPE = RequestShape(prompt_tokens=1000, completion_limit=1000)


def balanced_trio(a_errors: float) -> dict[str, Scored]:
    """a: cost 0.002, 1000 ms; b: cost 0.003, 500 ms; c: cost 0.004, 2000 ms.
    Normalized cost a 0, b 0.5, c 1; normalized latency a 1/3, b 0, c 1."""
    return {
        "a": cand(1.0, 1.0, latency_ms=1000.0, error_rate=a_errors),
        "b": cand(1.5, 1.5, latency_ms=500.0),
        "c": cand(2.0, 2.0, latency_ms=2000.0),
    }


@pytest.mark.parametrize(
    ("a_errors", "expected", "order"),
    [
        # a 0.4·0 + 0.4·⅓ = 0.1333; b 0.4·0.5 = 0.2; c 0.4 + 0.4 = 0.8
        (0.0, [0.4 / 3, 0.2, 0.8], ["a", "b", "c"]),
        # a's error rate 0.5 adds 0.2·0.5 = 0.1: 0.2333 > b's 0.2, b first
        (0.5, [0.4 / 3 + 0.1, 0.2, 0.8], ["b", "a", "c"]),
        # a small error rate does not: 0.1333 + 0.2·0.2 = 0.1733 < 0.2
        (0.2, [0.4 / 3 + 0.04, 0.2, 0.8], ["a", "b", "c"]),
    ],
    ids=["no-errors", "errors-flip", "few-errors-no-flip"],
)
def test_balanced_blends_cost_latency_and_errors(
    a_errors: float, expected: list[float], order: list[str]
) -> None:
    candidates = balanced_trio(a_errors)
    got = scores("balanced", BALANCED_SHAPE, list(candidates.values()), DEFAULT_WEIGHTS)
    assert got == pytest.approx(expected)
    assert names_ranked("balanced", BALANCED_SHAPE, candidates) == order


@pytest.mark.parametrize(
    ("weights", "expected", "order"),
    [
        # cost only: normalized cost a 0, b 0.5, c 1; error rates (a 0.9) count nothing
        (BalancedWeights(cost=1, latency=0, errors=0), [0.0, 0.5, 1.0], ["a", "b", "c"]),
        # latency only: a ⅓, b 0, c 1
        (BalancedWeights(cost=0, latency=1, errors=0), [1 / 3, 0.0, 1.0], ["b", "a", "c"]),
        # errors only: a 0.9, b and c 0 (tie: config order)
        (BalancedWeights(cost=0, latency=0, errors=1), [0.9, 0.0, 0.0], ["b", "c", "a"]),
    ],
    ids=["cost-only", "latency-only", "errors-only"],
)
def test_balanced_weights_are_the_configured_ones(
    weights: BalancedWeights, expected: list[float], order: list[str]
) -> None:
    candidates = balanced_trio(a_errors=0.9)
    got = scores("balanced", BALANCED_SHAPE, list(candidates.values()), weights)
    assert got == pytest.approx(expected)
    assert names_ranked("balanced", BALANCED_SHAPE, candidates, weights) == order


def test_balanced_with_cost_weight_only_is_the_cost_order() -> None:
    # config order z, y, x, w; cost order w, y, z, x; latency and errors say otherwise
    shape = RequestShape(prompt_tokens=500, completion_limit=200)
    candidates = {
        "z": cand(2.0, 3.0, latency_ms=100.0, error_rate=0.0),
        "y": cand(1.0, 2.0, latency_ms=5000.0, error_rate=0.9),
        "x": cand(9.0, 9.0, latency_ms=50.0, error_rate=0.0),
        "w": cand(0.2, 0.4, latency_ms=9000.0, error_rate=1.0),
    }
    cost_only = BalancedWeights(cost=1, latency=0, errors=0)
    assert names_ranked("balanced", shape, candidates, cost_only) == ["w", "y", "z", "x"]
    assert names_ranked("cost", shape, candidates) == ["w", "y", "z", "x"]


def test_balanced_with_equal_costs_and_latencies_is_decided_by_errors() -> None:
    # a span of 0 normalizes to 0 for all: only the error rates differ
    candidates = {
        "a": cand(latency_ms=100.0, error_rate=0.3),
        "b": cand(latency_ms=100.0, error_rate=0.1),
    }
    got = scores("balanced", BALANCED_SHAPE, list(candidates.values()), DEFAULT_WEIGHTS)
    assert got == pytest.approx([0.06, 0.02])
    assert names_ranked("balanced", BALANCED_SHAPE, candidates) == ["b", "a"]


# --- every strategy -------------------------------------------------------------------

STRATEGIES: list[Strategy] = ["cost", "latency", "throughput", "balanced"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_ties_keep_the_config_order(strategy: Strategy) -> None:
    same = {"latency_ms": 400.0, "ttft_ms": 50.0, "tokens_per_second": 60.0}
    candidates = {name: cand(1.0, 2.0, **same) for name in ("p", "q", "r", "s")}
    assert names_ranked(strategy, RequestShape(prompt_tokens=100), candidates) == [
        "p",
        "q",
        "r",
        "s",
    ]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_better_one_moves_ahead_of_tied_ones_which_keep_their_order(
    strategy: Strategy,
) -> None:
    same = {"latency_ms": 400.0, "ttft_ms": 50.0, "tokens_per_second": 60.0}
    better = {"latency_ms": 100.0, "ttft_ms": 10.0, "tokens_per_second": 600.0}
    candidates = {
        "p": cand(1.0, 2.0, **same),
        "q": cand(1.0, 2.0, **same),
        "best": cand(0.5, 1.0, **better),
        "r": cand(1.0, 2.0, **same),
    }
    assert names_ranked(strategy, RequestShape(prompt_tokens=100), candidates) == [
        "best",
        "p",
        "q",
        "r",
    ]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_no_candidates(strategy: Strategy) -> None:
    shape = RequestShape(prompt_tokens=100)
    assert scores(strategy, shape, [], DEFAULT_WEIGHTS) == []
    assert ranked([], lambda s: s, strategy, shape, DEFAULT_WEIGHTS) == []


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_one_candidate(strategy: Strategy) -> None:
    shape = RequestShape(prompt_tokens=100)
    only = cand(latency_ms=100.0, tokens_per_second=10.0, error_rate=0.5)
    assert ranked([only], lambda s: s, strategy, shape, DEFAULT_WEIGHTS) == [only]


def test_default_balanced_weights_avoid_a_middling_deployment_that_fails_often() -> None:
    """The demo's case: `flaky` sits between `fast` and `cheap` on cost and latency, but
    fails one request in five. At errors 0.2 it would win; the shipped default (1.0)
    keeps traffic off it."""
    shape = RequestShape(prompt_tokens=100, completion_limit=50)

    def candidate(input_price: float, output_price: float, latency: float, errors: int) -> Scored:
        stats = DeploymentStats(
            requests=100, errors=errors, error_rate=errors / 100, latency_ms=latency
        )
        prices = Prices(
            input_per_mtok=input_price,
            output_per_mtok=output_price,
            cached_input_per_mtok=input_price,
        )
        return Scored(prices=prices, stats=stats)

    fast, cheap, flaky = (
        candidate(0.59, 0.79, 400, 0),
        candidate(0.2, 0.3, 1500, 0),
        candidate(0.35, 0.45, 750, 20),
    )
    picked = ranked([fast, cheap, flaky], lambda c: c, "balanced", shape, BalancedWeights())
    assert picked[-1] is flaky
    assert ranked([fast, cheap, flaky], lambda c: c, "balanced", shape, DEFAULT_WEIGHTS)[0] is flaky
