"""The health board on a fake clock: cooldowns, the circuit breaker, probes, and the local
overlay that bites before the shared snapshot has caught up."""

from __future__ import annotations

import pytest

from providers.errors import (
    ProviderError,
    UpstreamAuthFailed,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from routing.config import CircuitConfig
from routing.health import Availability, Decision, HealthBoard
from routing.stats import DeploymentStats

T0 = 1_700_000_000.0
SETTLE = 1.0
CONFIG = CircuitConfig(
    consecutive_failures=3,
    error_rate=0.5,
    min_requests=10,
    cooldown=30.0,
    auth_cooldown=300.0,
    rate_limit_cooldown=5.0,
)
D = "groq/llama"
NO_DATA = DeploymentStats()


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def board(config: CircuitConfig = CONFIG) -> tuple[HealthBoard, Clock]:
    clock = Clock()
    return HealthBoard(config, clock, SETTLE), clock


def unavailable() -> ProviderError:
    return UpstreamUnavailable("503", provider="groq", upstream_status=503)


def available_now(health: HealthBoard, clock: Clock, stats: DeploymentStats = NO_DATA) -> bool:
    """Usable, on a snapshot taken just now (so the board's own decisions still rule)."""
    return health.availability(D, stats, taken_at=clock.now, now=clock.now).usable


# --- opening the circuit --------------------------------------------------------------


@pytest.mark.parametrize("threshold", [1, 3, 5])
def test_consecutive_failures_open_the_circuit_at_the_threshold(threshold: int) -> None:
    health, clock = board(CircuitConfig(consecutive_failures=threshold, cooldown=30.0))
    for _ in range(threshold - 1):
        assert health.failed(D, unavailable(), NO_DATA, was_open=False) == Decision()
        assert available_now(health, clock)
    decision = health.failed(D, unavailable(), NO_DATA, was_open=False)
    assert decision == Decision(open_until=T0 + 30.0)
    assert health.availability(D, NO_DATA, taken_at=T0, now=T0) == Availability(
        usable=False, state="open", retry_at=T0 + 30.0, reason="circuit open"
    )


def test_a_success_restarts_the_count() -> None:
    health, clock = board()
    for outcome in ("fail", "fail", "ok", "fail", "fail"):
        if outcome == "ok":
            assert health.succeeded(D, was_open=False) == Decision()
        else:
            assert health.failed(D, unavailable(), NO_DATA, was_open=False).open_until is None
    assert available_now(health, clock)
    assert health.failed(D, unavailable(), NO_DATA, was_open=False).open_until == T0 + 30.0


def test_failures_other_replicas_saw_count_too() -> None:
    health, _ = board()
    shared = DeploymentStats(consecutive_failures=2)  # the snapshot's count, every replica
    assert health.failed(D, unavailable(), shared, was_open=False).open_until == T0 + 30.0


@pytest.mark.parametrize(
    ("requests", "errors", "opens"),
    [
        (8, 8, False),  # 9 requests with this one: under min_requests, however bad
        (9, 4, True),  # 10 requests, 5 errors: 0.5 reaches error_rate
        (9, 3, False),  # 10 requests, 4 errors: 0.4
        (99, 49, True),  # 100, 50
        (99, 48, False),  # 100, 49
    ],
    ids=["under-min-requests", "at-rate", "under-rate", "many-at-rate", "many-under-rate"],
)
def test_the_error_rate_opens_the_circuit_over_min_requests(
    requests: int, errors: int, opens: bool
) -> None:
    health, _ = board()
    stats = DeploymentStats(requests=requests, errors=errors, error_rate=errors / requests)
    decision = health.failed(D, UpstreamTimeout("slow", provider="groq"), stats, was_open=False)
    assert decision.open_until == (T0 + 30.0 if opens else None)


def test_our_key_refused_opens_the_circuit_at_once_for_the_auth_cooldown() -> None:
    health, clock = board()
    refused = UpstreamAuthFailed("401", provider="groq", upstream_status=401)
    assert health.failed(D, refused, NO_DATA, was_open=False) == Decision(open_until=T0 + 300.0)
    clock.now = T0 + 299.0
    availability = health.availability(D, NO_DATA, taken_at=T0 + 0.5, now=clock.now)
    assert (availability.usable, availability.state, availability.retry_at) == (
        False,
        "open",
        T0 + 300.0,
    )


# --- rate limits ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "cools_for"),
    [(12.0, 12.0), (0.5, 0.5), (None, 5.0)],
    ids=["retry-after", "short-retry-after", "rate-limit-cooldown"],
)
def test_a_429_cools_the_deployment_down(retry_after: float | None, cools_for: float) -> None:
    health, clock = board()
    limited = UpstreamRateLimited("429", provider="groq", retry_after=retry_after)
    decision = health.failed(D, limited, NO_DATA, was_open=False)
    assert decision == Decision(cooldown_until=T0 + cools_for, open_until=None)
    assert health.availability(D, NO_DATA, taken_at=T0, now=T0) == Availability(
        usable=False, state="closed", retry_at=T0 + cools_for, reason="rate limited"
    )
    clock.now = T0 + cools_for - 0.01
    assert not available_now(health, clock)
    clock.now = T0 + cools_for
    assert available_now(health, clock)


def test_a_429_does_not_open_the_circuit_below_the_threshold() -> None:
    health, clock = board()
    # a window full of errors: any other failure would open the circuit on its error rate
    bad_window = DeploymentStats(requests=100, errors=90, error_rate=0.9)
    for _ in range(CONFIG.consecutive_failures - 1):
        limited = UpstreamRateLimited("429", provider="groq", retry_after=1.0)
        assert health.failed(D, limited, bad_window, was_open=False).open_until is None
    clock.now = T0 + 1.0
    assert health.availability(D, bad_window, taken_at=clock.now, now=clock.now) == (
        Availability(usable=True)
    )
    assert health.failed(D, unavailable(), bad_window, was_open=False).open_until is not None


def test_a_shared_cooldown_from_the_snapshot_is_honoured() -> None:
    health, _ = board()
    shared = DeploymentStats(cooldown_until=T0 + 7.0)  # another replica got the 429
    assert health.availability(D, shared, taken_at=T0, now=T0) == Availability(
        usable=False, retry_at=T0 + 7.0, reason="rate limited"
    )
    # the longer of the shared and the local cooldown
    health.failed(D, UpstreamRateLimited("429", provider="g", retry_after=9.0), NO_DATA, False)
    assert health.availability(D, shared, taken_at=T0, now=T0 + 8.0).retry_at == T0 + 9.0
    assert health.availability(D, shared, taken_at=T0, now=T0 + 9.0).usable


def test_an_open_circuit_is_reported_over_a_cooldown() -> None:
    health, _ = board()
    stats = DeploymentStats(open_until=T0 + 20.0, cooldown_until=T0 + 40.0)
    availability = health.availability(D, stats, taken_at=T0, now=T0)
    assert (availability.reason, availability.retry_at) == ("circuit open", T0 + 20.0)
    # open time over, still cooling down
    later = health.availability(D, stats, taken_at=T0 + 25.0, now=T0 + 25.0)
    assert (later.usable, later.reason, later.retry_at) == (False, "rate limited", T0 + 40.0)


# --- half-open and probes -------------------------------------------------------------


def opened(health: HealthBoard, clock: Clock) -> DeploymentStats:
    """Open the circuit at T0, move past the cooldown, and return the snapshot that has
    caught up with the decision (as the store would hold it)."""
    for _ in range(CONFIG.consecutive_failures):
        decision = health.failed(D, unavailable(), NO_DATA, was_open=False)
    assert decision.open_until == T0 + 30.0
    clock.now = T0 + 31.0
    return DeploymentStats(open_until=T0 + 30.0, consecutive_failures=3)


def test_after_the_cooldown_the_circuit_is_half_open_one_probe_at_a_time() -> None:
    health, clock = board()
    stats = opened(health, clock)
    assert health.availability(D, stats, clock.now, clock.now) == Availability(
        usable=True, state="half_open"
    )
    health.probe_started(D)
    assert health.availability(D, stats, clock.now, clock.now) == Availability(
        usable=False, state="half_open", retry_at=clock.now + 1.0, reason="probe in flight"
    )


def test_a_probe_that_succeeds_closes_the_circuit() -> None:
    health, clock = board()
    stats = opened(health, clock)
    health.probe_started(D)
    assert health.succeeded(D, was_open=True) == Decision(open_until=0.0)
    # the snapshot still says open until T0 + 30: this replica's decision wins until it settles
    assert health.availability(D, stats, taken_at=clock.now, now=clock.now) == Availability(
        usable=True
    )
    assert health.open_until(D, stats, taken_at=clock.now) == 0.0
    # the probe is over: when another replica opens the circuit again, this one may probe
    clock.now = T0 + 100.0
    reopened = DeploymentStats(open_until=T0 + 90.0)
    assert health.availability(D, reopened, clock.now, clock.now) == Availability(
        usable=True, state="half_open"
    )


def test_a_probe_that_fails_opens_the_circuit_again() -> None:
    health, clock = board()
    stats = opened(health, clock)
    health.probe_started(D)
    decision = health.failed(D, unavailable(), stats, was_open=True)
    assert decision == Decision(open_until=clock.now + 30.0)
    availability = health.availability(D, stats, taken_at=clock.now, now=clock.now)
    assert (availability.usable, availability.state, availability.retry_at) == (
        False,
        "open",
        clock.now + 30.0,
    )
    # and once that cooldown is over, a new probe may go (the failure ended the last one)
    clock.now += 31.0
    reopened = DeploymentStats(open_until=T0 + 61.0)
    assert health.availability(D, reopened, clock.now, clock.now).state == "half_open"
    assert health.availability(D, reopened, clock.now, clock.now).usable


def test_a_rate_limited_probe_opens_the_circuit_again() -> None:
    health, clock = board()
    stats = opened(health, clock)
    health.probe_started(D)
    limited = UpstreamRateLimited("429", provider="groq", retry_after=2.0)
    decision = health.failed(D, limited, stats, was_open=True)
    assert decision == Decision(cooldown_until=clock.now + 2.0, open_until=clock.now + 30.0)


# --- the local overlay and the shared snapshot -----------------------------------------


@pytest.mark.parametrize(
    ("taken_after", "snapshot_open_until", "usable"),
    [
        # the snapshot predates our decision: ours rules, the circuit is open
        (0.0, 0.0, False),
        (SETTLE - 0.01, 0.0, False),
        # the snapshot has settled: it rules; another replica closed the circuit
        (SETTLE, 0.0, True),
        (SETTLE + 5.0, 0.0, True),
        # settled, and it agrees with us
        (SETTLE, T0 + 30.0, False),
    ],
    ids=["same-time", "just-before-settle", "at-settle-closed", "later-closed", "at-settle-open"],
)
def test_the_local_decision_wins_until_the_snapshot_settles(
    taken_after: float, snapshot_open_until: float, usable: bool
) -> None:
    health, clock = board()
    for _ in range(CONFIG.consecutive_failures):
        health.failed(D, unavailable(), NO_DATA, was_open=False)
    clock.now = T0 + 2.0
    snapshot = DeploymentStats(open_until=snapshot_open_until)
    availability = health.availability(D, snapshot, taken_at=T0 + taken_after, now=clock.now)
    assert availability.usable is usable


def test_a_settled_snapshot_can_reopen_what_this_replica_closed() -> None:
    health, clock = board()
    stats = opened(health, clock)
    health.succeeded(D, was_open=True)  # closed at T0 + 31
    reopened = DeploymentStats(open_until=T0 + 70.0)  # another replica's probe failed
    clock.now = T0 + 32.5
    assert health.availability(D, reopened, taken_at=T0 + 31.5, now=clock.now).usable
    not_yet = health.availability(D, reopened, taken_at=T0 + 32.0, now=clock.now)
    assert (not_yet.usable, not_yet.state) == (False, "open")
    assert health.availability(D, stats, taken_at=T0 + 32.0, now=clock.now).state == "half_open"


def test_a_circuit_another_replica_opened_is_open_here() -> None:
    health, _ = board()
    shared = DeploymentStats(open_until=T0 + 10.0)
    assert health.availability(D, shared, taken_at=T0, now=T0) == Availability(
        usable=False, state="open", retry_at=T0 + 10.0, reason="circuit open"
    )
    assert health.availability(D, shared, taken_at=T0, now=T0 + 10.0).state == "half_open"


def test_deployments_are_independent() -> None:
    health, clock = board()
    refused = UpstreamAuthFailed("401", provider="groq")
    health.failed(D, refused, NO_DATA, was_open=False)
    assert not available_now(health, clock)
    assert health.availability("together/llama", NO_DATA, clock.now, clock.now).usable


def test_an_abandoned_probe_lets_the_next_request_probe() -> None:
    health, clock = board()
    stats = opened(health, clock)
    health.probe_started(D)
    assert not available_now(health, clock, stats)
    health.probe_abandoned(D)  # the client left mid-probe: no verdict
    assert health.availability(D, stats, clock.now, clock.now).state == "half_open"
    assert available_now(health, clock, stats)


def test_a_success_elsewhere_resets_this_replicas_failure_count() -> None:
    health, clock = board()
    for _ in range(2):  # two failures here: one short of the threshold (3)
        health.failed(D, unavailable(), NO_DATA, was_open=False)
    clock.now += 1.0
    # the snapshot holds outcomes newer than our failures: another replica succeeded
    fresh = DeploymentStats(requests=5, errors=2, last_seen=clock.now, consecutive_failures=0)
    assert health.failed(D, unavailable(), fresh, was_open=False) == Decision()
    assert available_now(health, clock, fresh)
