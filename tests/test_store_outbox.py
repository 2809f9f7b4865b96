"""The outbox: merged deltas write what the deltas one by one write, and it stays bounded."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from routing.config import MetricsConfig
from routing.stats import Outcome
from routing.store.fields import Accumulator, DeploymentDelta, apply
from routing.store.outbox import Outbox, merge

CONFIG = MetricsConfig()
T0 = 1_000_000.0
DEPLOYMENTS = ("openai/a", "groq/b")

outcomes = st.builds(
    Outcome,
    deployment=st.sampled_from(DEPLOYMENTS),
    at=st.floats(T0 - 70, T0 + 5),
    ok=st.booleans(),
    latency=st.floats(0.001, 30),
    ttft=st.none() | st.floats(0.001, 5),
    completion_tokens=st.none() | st.integers(0, 4000),
    cooldown_until=st.sampled_from([0.0, T0 + 3, T0 + 9]),
    open_until=st.sampled_from([None, 0.0, T0 + 10, T0 + 20]),
)


def _write(
    entries: list[tuple[str, DeploymentDelta]], start: dict[str, float]
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    windows: dict[str, dict[str, float]] = {}
    states: dict[str, dict[str, float]] = {d: dict(start) for d in DEPLOYMENTS}
    for deployment, delta in entries:
        apply(windows.setdefault(deployment, {}), states[deployment], delta, 0)
    return windows, states


@settings(max_examples=150, deadline=None)
@given(
    flushes=st.lists(st.lists(outcomes, max_size=6), min_size=1, max_size=6),
    start_open=st.sampled_from([0.0, T0 + 15, T0 + 50]),
)
def test_merged_deltas_write_what_the_flushes_write(
    flushes: list[list[Outcome]], start_open: float
) -> None:
    one_by_one: list[tuple[str, DeploymentDelta]] = []
    outbox = Outbox(CONFIG)
    for flush in flushes:
        accumulator = Accumulator(CONFIG)
        for outcome in flush:
            accumulator.add(outcome)
        deltas = accumulator.drain()
        one_by_one += deltas.items()
        outbox.add(deltas, T0)
    start = {"open": start_open, "cf": 2.0, "lat.s": 500.0, "lat.w": 1.0, "lat.t": T0 - 10}

    expected_windows, expected_states = _write(one_by_one, start)
    windows, states = _write(outbox.entries(), start)

    assert windows == expected_windows
    for deployment in DEPLOYMENTS:
        assert states[deployment].keys() == expected_states[deployment].keys()
        for name, value in expected_states[deployment].items():
            assert math.isclose(states[deployment][name], value, rel_tol=1e-9, abs_tol=1e-12), name


def test_close_then_open_is_not_merged() -> None:
    # apply() opens with a max: merged, the close of an earlier, later `open` is lost
    closed, opened = DeploymentDelta(open_until=0.0), DeploymentDelta(open_until=T0 + 5)
    assert merge(closed, opened) is None
    assert merge(opened, closed) is not None


def test_one_entry_per_deployment_however_many_flushes() -> None:
    outbox = Outbox(CONFIG)
    for i in range(50):
        accumulator = Accumulator(CONFIG)
        accumulator.add(Outcome(deployment="openai/a", at=T0 + i * 0.2, ok=True, latency=0.1))
        outbox.add(accumulator.drain(), T0 + i * 0.2)
    [(deployment, delta)] = outbox.entries()
    assert deployment == "openai/a"
    assert sum(v for f, v in delta.counters.items() if f.endswith(":n")) == 50


def test_holds_about_one_window_then_drops_the_oldest() -> None:
    config = MetricsConfig(window=30, bucket=10)  # 4 slices of one bucket each
    outbox = Outbox(config)
    for second in range(0, 60, 2):  # one outcome per flush, 30 flushes over 6 buckets
        now = T0 + second
        accumulator = Accumulator(config)
        accumulator.add(Outcome(deployment="openai/a", at=now, ok=True, latency=0.1))
        outbox.add(accumulator.drain(), now)
    assert outbox.dropped == 10  # the first two buckets' five flushes each
    [(_, delta)] = outbox.entries()
    assert sum(v for f, v in delta.counters.items() if f.endswith(":n")) == 20
    assert min(int(f.split(":")[0]) for f in delta.counters) == int((T0 + 20) // 10)


def test_keep_replaces_the_contents() -> None:
    outbox = Outbox(CONFIG)
    outbox.add({"openai/a": DeploymentDelta(seen=T0)}, T0)
    outbox.keep([], T0)
    assert not outbox
    assert outbox.entries() == []
    kept = [("groq/b", DeploymentDelta(seen=T0 + 1))]
    outbox.keep(kept, T0 + 1)
    assert outbox.entries() == kept
