"""Which deployments may be tried now: rate-limit cooldowns and the circuit breaker.

The shared truth is in the store's snapshot (every replica's decisions, up to one refresh
old). A decision taken here must bite at once, so this board also keeps its own until the
snapshot has caught up with it.

Circuit: closed → *open* after `consecutive_failures` failures in a row, or when the
window's error rate reaches `error_rate` over at least `min_requests` requests, or at once
when the provider refused our key (for `auth_cooldown`). Open for `cooldown`, then
*half-open*: one request at a time from this replica probes it; success closes the
circuit for every replica, failure opens it again.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from providers.errors import ProviderError, UpstreamAuthFailed, UpstreamRateLimited
from routing.config import CircuitConfig
from routing.stats import CircuitState, DeploymentStats


class _Local(msgspec.Struct, kw_only=True):
    cooldown_until: float = 0.0
    open_until: float = 0.0
    decided_at: float = 0.0  # when this replica last changed `open_until`
    consecutive_failures: int = 0  # this replica's, since its last success
    failed_at: float = 0.0  # this replica's last failure
    probing: bool = False


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """What one outcome changed, to be shared through the store."""

    cooldown_until: float = 0.0
    open_until: float | None = None  # None no change, 0 closed, > 0 open until


class Availability(msgspec.Struct, frozen=True, kw_only=True):
    usable: bool
    state: CircuitState = "closed"
    retry_at: float = 0.0  # when it will be usable again, if not now
    # "rate limited" | "circuit open" | "probe in flight" | a limit (routing/limits.py)
    reason: str = ""
    deployment: str = ""  # which, once the dispatcher has skipped it


class HealthBoard:
    def __init__(self, config: CircuitConfig, clock: Callable[[], float], settle: float) -> None:
        """`settle`: how long after a local decision the snapshot is sure to include it."""
        self._config = config
        self._clock = clock
        self._settle = settle
        self._local: dict[str, _Local] = {}

    def _of(self, deployment: str) -> _Local:
        local = self._local.get(deployment)
        if local is None:
            local = self._local[deployment] = _Local()
        return local

    def open_until(self, deployment: str, stats: DeploymentStats, taken_at: float) -> float:
        local = self._local.get(deployment)
        if local is None or taken_at >= local.decided_at + self._settle:
            return stats.open_until  # the snapshot already holds our last decision
        return local.open_until

    def availability(
        self, deployment: str, stats: DeploymentStats, taken_at: float, now: float
    ) -> Availability:
        local = self._local.get(deployment)
        cooldown = max(stats.cooldown_until, local.cooldown_until if local else 0.0)
        open_until = self.open_until(deployment, stats, taken_at)
        if now < open_until:
            return Availability(
                usable=False, state="open", retry_at=open_until, reason="circuit open"
            )
        if now < cooldown:
            return Availability(usable=False, retry_at=cooldown, reason="rate limited")
        if open_until > 0:
            if local is not None and local.probing:
                return Availability(
                    usable=False, state="half_open", retry_at=now + 1.0, reason="probe in flight"
                )
            return Availability(usable=True, state="half_open")
        return Availability(usable=True)

    def probe_started(self, deployment: str) -> None:
        self._of(deployment).probing = True

    def probe_abandoned(self, deployment: str) -> None:
        """The probe ended without a verdict (cancelled): the next request may probe."""
        self._of(deployment).probing = False

    def succeeded(self, deployment: str, was_open: bool) -> Decision:
        local = self._of(deployment)
        local.consecutive_failures = 0
        local.probing = False
        if not was_open:
            return Decision()
        local.open_until, local.decided_at = 0.0, self._clock()
        return Decision(open_until=0.0)

    def failed(
        self, deployment: str, error: ProviderError, stats: DeploymentStats, was_open: bool
    ) -> Decision:
        """Count a failure; maybe cool the deployment down or open its circuit."""
        config, now = self._config, self._clock()
        local = self._of(deployment)
        local.probing = False
        if stats.last_seen is not None and stats.last_seen >= local.failed_at:
            # the snapshot has every replica's outcomes since our last failure (ours
            # included): a success elsewhere has reset the count
            seen = stats.consecutive_failures
        else:
            seen = max(local.consecutive_failures, stats.consecutive_failures)
        local.consecutive_failures, local.failed_at = seen + 1, now
        cooldown_until = 0.0
        if isinstance(error, UpstreamRateLimited):
            retry_after = error.retry_after
            cooldown_until = now + (
                retry_after if retry_after is not None else config.rate_limit_cooldown
            )
            local.cooldown_until = max(local.cooldown_until, cooldown_until)
        open_for: float | None = None
        if isinstance(error, UpstreamAuthFailed):
            open_for = config.auth_cooldown
        elif was_open or local.consecutive_failures >= config.consecutive_failures:
            open_for = config.cooldown
        elif not isinstance(error, UpstreamRateLimited):
            requests, errors = stats.requests + 1, stats.errors + 1
            if requests >= config.min_requests and errors / requests >= config.error_rate:
                open_for = config.cooldown
        if open_for is None:
            return Decision(cooldown_until=cooldown_until)
        local.open_until, local.decided_at = now + open_for, now
        return Decision(cooldown_until=cooldown_until, open_until=local.open_until)
