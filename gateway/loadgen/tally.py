"""What the traffic saw, counted: one `Outcome` per request, folded into per-provider rows.

Pure: no I/O and no clock. Times are seconds since the run started, passed in by the
caller, so the windows and percentiles are table-tested with hand-made outcomes.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Sequence

import msgspec


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """How one request ended, as the client saw it."""

    finished_at: float  # seconds since the run started
    latency_ms: float  # client-side: request sent to last byte read
    provider: str | None = None  # who served it; None when it failed
    cost_usd: float = 0.0
    strategy: str | None = None  # as the gateway reported it
    failed_attempts: tuple[str, ...] = ()  # providers named in `attempts[]`
    error: str | None = None  # on failure: "502 upstream_unavailable", "no connection", ...

    @property
    def ok(self) -> bool:
        return self.provider is not None


class ProviderRow(msgspec.Struct, frozen=True, kw_only=True):
    provider: str
    served: int
    share_pct: float  # of all successful answers
    recent_share_pct: float  # of the successful answers in the share window
    failed_attempts: int
    recent_p50_ms: float | None  # over the latency window
    recent_p95_ms: float | None
    p50_ms: float | None  # over the whole run
    p95_ms: float | None
    mean_cost_usd: float | None
    total_cost_usd: float


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    elapsed_s: float
    answered: int  # requests that ended, in success or failure
    succeeded: int
    errors: dict[str, int]  # label -> count, most frequent first
    rate_per_s: float  # answers per second over the whole run
    recent_rate_per_s: float  # over the share window
    total_cost_usd: float
    strategy: str | None  # the last one the gateway reported
    rows: list[ProviderRow]


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of values sorted ascending; None when there are none."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _share(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


class Tally:
    """Every outcome of a run, in the order they ended."""

    def __init__(
        self,
        providers: Iterable[str] = (),
        *,
        window_s: float = 10.0,
        share_window_s: float = 3.0,
    ) -> None:
        # rows exist from the start for the providers the gateway lists, so one that gets
        # no traffic shows as 0 % rather than missing
        self._providers: dict[str, None] = dict.fromkeys(providers)
        self.window_s = window_s
        self.share_window_s = share_window_s
        self.outcomes: list[Outcome] = []
        self._ends: list[float] = []  # finished_at of each outcome, for bisecting windows

    def add(self, outcome: Outcome) -> None:
        # outcomes arrive in the order they ended, but guard against a clock that did not
        index = bisect.bisect_right(self._ends, outcome.finished_at)
        self._ends.insert(index, outcome.finished_at)
        self.outcomes.insert(index, outcome)
        for name in (outcome.provider, *outcome.failed_attempts):
            if name is not None:
                self._providers.setdefault(name)

    def _since(self, start: float) -> list[Outcome]:
        return self.outcomes[bisect.bisect_left(self._ends, start) :]

    def snapshot(self, now: float) -> Snapshot:
        """The tallies as of `now` (seconds since the run started)."""
        ok = [o for o in self.outcomes if o.ok]
        recent = [o for o in self._since(now - self.window_s) if o.ok]
        latest = self._since(now - self.share_window_s)
        latest_ok = [o for o in latest if o.ok]
        failed = Counter(name for o in self.outcomes for name in o.failed_attempts)
        rows = [self._row(name, ok, recent, latest_ok, failed[name]) for name in self._providers]
        errors = Counter(o.error or "error" for o in self.outcomes if not o.ok)
        strategies = [o.strategy for o in ok if o.strategy]
        return Snapshot(
            elapsed_s=now,
            answered=len(self.outcomes),
            succeeded=len(ok),
            errors=dict(errors.most_common()),
            rate_per_s=len(self.outcomes) / now if now > 0 else 0.0,
            recent_rate_per_s=len(latest) / min(now, self.share_window_s) if now > 0 else 0.0,
            total_cost_usd=math.fsum(o.cost_usd for o in ok),
            strategy=strategies[-1] if strategies else None,
            rows=rows,
        )

    @staticmethod
    def _row(
        name: str,
        ok: list[Outcome],
        recent: list[Outcome],
        latest: list[Outcome],
        failed_attempts: int,
    ) -> ProviderRow:
        mine = [o for o in ok if o.provider == name]
        latencies = sorted(o.latency_ms for o in mine)
        recent_latencies = sorted(o.latency_ms for o in recent if o.provider == name)
        total_cost = math.fsum(o.cost_usd for o in mine)
        return ProviderRow(
            provider=name,
            served=len(mine),
            share_pct=_share(len(mine), len(ok)),
            recent_share_pct=_share(sum(o.provider == name for o in latest), len(latest)),
            failed_attempts=failed_attempts,
            recent_p50_ms=percentile(recent_latencies, 50),
            recent_p95_ms=percentile(recent_latencies, 95),
            p50_ms=percentile(latencies, 50),
            p95_ms=percentile(latencies, 95),
            mean_cost_usd=total_cost / len(mine) if mine else None,
            total_cost_usd=total_cost,
        )
