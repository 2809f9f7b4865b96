"""The routing simulator: the real router in virtual time on scripted deployments. The
harness itself (deterministic, wired to the real dispatcher and store, scenario files
checked), then routing behaviours that depend on time, asserted on it rather than on a
loaded machine's clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gateway.cli import main
from routing.simulator.report import Report, report
from routing.simulator.runner import simulate
from routing.simulator.scenario import (
    Scenario,
    ScenarioError,
    load_scenario,
    shipped_scenarios,
)


def scenario_of(text: dict[str, Any]) -> Scenario:
    return msgspec.convert(text, Scenario)


def run(source: str | Scenario, **changes: Any) -> Report:
    scenario = load_scenario(source) if isinstance(source, str) else source
    if changes:
        scenario = msgspec.structs.replace(scenario, **changes)
    return report(simulate(scenario))


# --------------------------------------------------------------------------- the harness


def test_the_same_scenario_gives_the_same_report() -> None:
    first = msgspec.json.encode(run("independent"))
    assert first == msgspec.json.encode(run("independent"))
    assert first != msgspec.json.encode(run("independent", seed=2))


def test_time_is_virtual_and_every_phase_runs_its_length() -> None:
    trace = simulate(load_scenario("independent"))
    assert [round(p.ended - p.started, 6) for p in trace.phases] == [20.0, 20.0, 20.0]
    # 8 clients kept busy for a minute at 300-900 ms an answer
    assert len(trace.requests) > 1000
    assert all(r.ended >= r.started for r in trace.requests)


def test_failures_go_through_the_real_dispatcher_retries_and_fallbacks() -> None:
    trace = simulate(
        scenario_of(
            {
                "deployments": {
                    "broken": {"latency_ms": 100, "error_rate": 1.0, "error_status": 503},
                    "spare": {"latency_ms": 400},
                },
                "routing": {"exploration": {"share": 0.0}},
                "phases": [{"name": "down", "duration": 3}],
            }
        )
    )
    assert trace.requests and all(r.status == 200 for r in trace.requests)
    assert {r.provider for r in trace.requests} == {"spare"}
    failed = [t for t in trace.tries if t.deployment == "broken"]
    assert {t.status for t in failed} == {503}
    # each of the 8 clients' first requests tried it first and once more (retries.attempts
    # 2) before falling back; then its circuit was open (5 failures in a row)
    first = trace.requests[0].id
    assert [t.request_id for t in failed].count(first) == 2
    assert 5 <= len(failed) <= 16
    assert max(t.started for t in failed) < 0.5


def test_a_price_set_live_reaches_routing_through_the_store() -> None:
    result = run("price-change")
    before, after = result.phases
    assert before.shares["cheap"] > 0.9
    assert after.shares["middle"] > 0.9 and after.shares["cheap"] < 0.05


def test_replicas_share_one_store() -> None:
    trace = simulate(load_scenario("replicas"))
    assert {r.replica for r in trace.requests} == {0, 1}


def test_a_deployment_added_live_is_routed_to() -> None:
    added = run("added-live").phases[1]
    assert added.shares["new"] > 0.5


@pytest.mark.parametrize("name", shipped_scenarios())
def test_every_shipped_scenario_runs_without_client_errors(name: str) -> None:
    result = run(name)
    assert result.requests > 0
    assert [p.client_errors for p in result.phases] == [0] * len(result.phases)


def test_a_broken_scenario_says_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("deployments: {a: {}}\nphases: [{name: p, duration: 1, best: b}]\n")
    with pytest.raises(ScenarioError, match="unknown best 'b'"):
        load_scenario(path)
    path.write_text("deployments: {a: {latency_ms: -1}}\nphases: [{name: p, duration: 1}]\n")
    with pytest.raises(ScenarioError, match=r"deployments\[\.\.\.\]\.latency_ms"):
        load_scenario(path)
    with pytest.raises(ScenarioError, match="no-such"):
        load_scenario(tmp_path / "no-such.yaml")


def test_the_command_prints_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "degrade"]) == 0
    shown = capsys.readouterr().out
    assert "fast-doubles" in shown and "best share" in shown
    assert main(["simulate", "degrade", "--json", "--strategy", "cost"]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert parsed["strategy"] == "cost" and len(parsed["phases"]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("phases: []\n")
    assert main(["simulate", str(bad)]) == 1
    assert "invalid scenario" in capsys.readouterr().err


# --------------------------------------------------------------------------- routing in time


def test_latency_moves_off_a_slow_provider_and_probes_it_again() -> None:
    """Was an end-to-end test that raced the machine's clock; here in virtual time, on
    the default settings."""
    slow, healed = run("recover").phases
    assert slow.shares["steady"] > 0.85  # the traffic is on the fastest
    assert 0.01 < slow.shares["fast"] < 0.1  # the slow one keeps a small probe share
    assert healed.best == "fast" and healed.best_share > 0.85  # and wins traffic back
    assert healed.recover_s is not None and healed.recover_s <= 3.0  # within ~3 s


def test_the_independent_scenario() -> None:
    """The issue's benchmark: 3 deployments, 8 in flight; the best slows to 900 ms, then
    recovers while the second fails 40 % of its requests."""
    healthy, slow, flaky = run("independent").phases
    assert healthy.best_share > 0.9
    assert slow.react_s is not None and slow.react_s <= 1.0  # first slow answers at 0.9 s
    assert slow.react_requests is not None and slow.react_requests <= 10
    assert slow.best_share > 0.85
    assert flaky.recover_s is not None and flaky.recover_s <= 3.0
    assert flaky.unhealthy_share is not None and flaky.unhealthy_share <= 0.05
    assert flaky.best_share > 0.85
    assert [p.client_errors for p in (healthy, slow, flaky)] == [0, 0, 0]


def test_balanced_keeps_the_best_while_healthy() -> None:
    """Requests in flight weigh in quadratically: the 8 a closed loop keeps on the best
    deployment must not hand its traffic to the near-ties (it did at 70 %)."""
    healthy = run("independent", strategy="balanced").phases[0]
    assert healthy.best == "steady" and healthy.best_share >= 0.85


def test_a_doubled_latency_loses_its_traffic_within_a_second() -> None:
    """Its first slow answers come 0.6 s in (the requests sent before, at 300 ms, are
    answered in 600): within about a second, or five slow answers, it has lost most of
    its traffic."""
    _, doubled = run("degrade").phases
    assert doubled.react_s is not None and doubled.react_s <= 1.0
    assert doubled.react_requests is not None and doubled.react_requests <= 12
    assert doubled.best_share > 0.85
    assert doubled.client_errors == 0


def test_a_deployment_failing_40_percent_gets_little_traffic_and_no_client_sees_it() -> None:
    _, flaky, fixed = run("flaky").phases
    assert flaky.react_s is not None and flaky.react_s <= 1.0
    # health probes (one every 2 s) and a relapse after a lucky run of successes
    assert flaky.unhealthy_share is not None and flaky.unhealthy_share <= 0.05
    assert flaky.client_errors == 0
    assert fixed.recover_s is not None and fixed.recover_s <= 3.0  # fixed: back within ~3 s
    assert fixed.client_errors == 0


def test_cost_spends_nothing_exploring_prices() -> None:
    for phase in run("price-change").phases:
        assert phase.overspend == 0.0 and phase.best_share == 1.0
        assert phase.client_errors == 0
    for phase in run("independent", strategy="cost").phases:
        # the only spending over the cheapest is the health probe of a failing one
        assert phase.overspend <= 0.02, phase


def test_a_deployment_added_live_wins_its_traffic_at_once() -> None:
    _, added = run("added-live").phases
    assert added.best == "new" and added.best_share > 0.9
    assert added.recover_s is not None and added.recover_s <= 1.0
    assert added.client_errors == 0


def test_replicas_learn_from_each_other() -> None:
    """Two gateways on one store: each sees half the evidence first-hand and the rest
    within one refresh (0.5 s)."""
    healthy, slow, flaky = run("replicas").phases
    assert healthy.best_share > 0.9
    assert slow.react_s is not None and slow.react_s <= 1.5
    assert slow.best_share > 0.85
    assert flaky.recover_s is not None and flaky.recover_s <= 3.0
    assert flaky.unhealthy_share is not None and flaky.unhealthy_share <= 0.05
    assert [p.client_errors for p in (healthy, slow, flaky)] == [0, 0, 0]


def test_a_burst_spreads_over_the_deployments() -> None:
    _, burst = run("burst").phases
    assert burst.burst_shares is not None
    assert max(burst.burst_shares.values()) <= 0.6, burst.burst_shares
    assert min(burst.burst_shares.values()) >= 0.1, burst.burst_shares
    assert burst.client_errors == 0
