"""The vendor's limits on a deployment (`max_concurrency`, `rpm`, `tpm`), checked right
before each try, as health is: a deployment at a limit is skipped for the next one, and
when every deployment is skipped for limits or cooldowns the answer is 429 with the
soonest Retry-After.

- `max_concurrency`: this replica's requests in flight on it (each replica has its own
  share of the vendor's concurrency; counted as they start and end).
- `rpm` / `tpm`: tries started and tokens used in the last minute by every replica, from
  the store's snapshot (its window counts both, per bucket, in the same batched writes
  as every outcome: no round trip of its own), plus the tries this replica began since
  its last flush. Other replicas' tries reach it within one refresh, so a fleet can
  overshoot by what it starts in that time; the vendor's own 429 then cools the
  deployment down for every replica.
"""

from __future__ import annotations

from routing.deployments import Limits
from routing.health import Availability
from routing.stats import DeploymentStats

CONCURRENCY_RETRY = 1.0  # seconds: a guess at when a request in flight ends

AT_CONCURRENCY = "at max_concurrency"
AT_RPM = "at its rpm"
AT_TPM = "at its tpm"
LIMIT_REASONS = frozenset({AT_CONCURRENCY, AT_RPM, AT_TPM})


def limit_reached(
    limits: Limits,
    stats: DeploymentStats,
    in_flight_here: int,
    unflushed_starts: int,
    now: float,
) -> Availability | None:
    """Why the deployment may not take another try now (None: it may). `now` is the
    store's (wall) clock, as `stats` times are."""
    if limits.max_concurrency is not None and in_flight_here >= limits.max_concurrency:
        return Availability(usable=False, retry_at=now + CONCURRENCY_RETRY, reason=AT_CONCURRENCY)
    if limits.rpm is not None and stats.minute_requests + unflushed_starts >= limits.rpm:
        return Availability(usable=False, retry_at=_minute_ends(stats, now), reason=AT_RPM)
    if limits.tpm is not None and stats.minute_tokens >= limits.tpm:
        return Availability(usable=False, retry_at=_minute_ends(stats, now), reason=AT_TPM)
    return None


def _minute_ends(stats: DeploymentStats, now: float) -> float:
    """When the oldest tries counted leave the minute (a second from now at the least,
    should the snapshot be older than that)."""
    return max(stats.minute_ends, now + 1.0)
