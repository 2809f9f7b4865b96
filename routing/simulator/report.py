"""What a routing policy is judged on, per phase of a simulated run:

- `best_share`: answers served by the phase's best deployment (declared by the scenario,
  else the one a router knowing the true profiles would rank first);
- `react_s` / `react_requests`: after the phase began, how long until the previous
  phase's best, when it no longer is, gets at most 20 % of the next second's requests,
  and how many requests it was sent until then;
- `recover_s`: how long until the new best gets at least half of the next second's;
- `overspend`: what the answers cost against each served by the cheapest healthy
  deployment (failing < 10 %) at the same token counts;
- `unhealthy_share`: requests tried first on deployments failing 20 % or more, from 2 s
  into the phase (time to learn) to its end;
- `client_errors`: requests that got an error answer.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence

import msgspec

from routing.config import BalancedWeights, Strategy
from routing.deployments import Prices
from routing.scoring import RequestShape, Scored, scores
from routing.simulator.deployment import Try
from routing.simulator.runner import PhaseSpan, Request, Trace
from routing.simulator.scenario import Profile
from routing.stats import DeploymentStats

WINDOW = 1.0  # seconds of traffic a share is taken over
REACTED = 0.2  # the old best has lost most of its traffic
RECOVERED = 0.5  # the new best has most of it
HEALTHY = 0.1  # failing less than this: a fair choice for the cheapest
UNHEALTHY = 0.2  # failing this much or more
SETTLE = 2.0  # seconds a phase gives routing to learn before unhealthy_share counts


class PhaseReport(msgspec.Struct, kw_only=True):
    name: str
    started: float
    duration: float
    best: str
    requests: int
    answered: int
    client_errors: int
    shares: dict[str, float]  # the share of requests each deployment was tried first for
    best_share: float  # of answers
    react_s: float | None = None
    react_requests: int | None = None
    recover_s: float | None = None
    cost_usd: float
    cheapest_usd: float
    overspend: float  # cost / cheapest - 1
    unhealthy_share: float | None = None  # None: no deployment failing >= 20 %
    burst_shares: dict[str, float] | None = None  # first tries of the phase's burst
    latency_p50_ms: float | None = None  # as the client saw it
    latency_p95_ms: float | None = None


class Report(msgspec.Struct, kw_only=True):
    scenario: str
    description: str
    strategy: str
    replicas: int
    requests: int
    tries: int
    deployments: list[str]
    phases: list[PhaseReport]
    timeline: list[dict[str, float]]  # traffic share per time slice, first tries
    slice_s: float


def best_of(span: PhaseSpan, strategy: Strategy) -> str:
    """The deployment a router that knew every profile would rank first."""
    if span.best is not None:
        return span.best
    names = [n for n, p in span.profiles.items() if (p.error_rate or 0) < HEALTHY]
    names = names or list(span.profiles)
    candidates = [_scored(span.profiles[name]) for name in names]
    shape = RequestShape(
        prompt_tokens=span.load.prompt_tokens or 1, completion_limit=span.load.max_tokens
    )
    values = scores(strategy, shape, candidates, BalancedWeights())
    return names[min(range(len(names)), key=values.__getitem__)]


def _scored(profile: Profile) -> Scored:
    latency = profile.latency_ms or 0.0
    ttft = profile.ttft_ms if profile.ttft_ms is not None else latency / 4
    tokens = float(profile.completion_tokens or 1)
    generation = max(latency - ttft, 1e-3) / 1000
    return Scored(
        prices=Prices(
            input_per_mtok=profile.input_per_mtok or 0.0,
            output_per_mtok=profile.output_per_mtok or 0.0,
            cached_input_per_mtok=profile.input_per_mtok or 0.0,
        ),
        stats=DeploymentStats(
            requests=100,
            latency_ms=latency,
            error_rate=profile.error_rate or 0.0,
            completion_tokens=tokens,
            tokens_per_second=tokens / generation,
        ),
    )


class _Series:
    """First tries in time order, for trailing shares."""

    def __init__(self, firsts: Sequence[Try]) -> None:
        self.times = [t.started for t in firsts]
        self.names = [t.deployment for t in firsts]

    def share(self, name: str, begin_index: int) -> float:
        """Share of `name` among the first tries in [t, t + WINDOW), t = times[begin_index]."""
        begin = self.times[begin_index]
        end = bisect.bisect_left(self.times, begin + WINDOW)
        window = self.names[begin_index:end]
        return window.count(name) / len(window) if window else 0.0

    def first_when(self, name: str, since: float, until: float, low: bool, bound: float) -> int:
        """Index of the first try in [since, until) where the trailing share of `name` is
        at most (`low`) or at least `bound`; -1 if none."""
        start = bisect.bisect_left(self.times, since)
        stop = bisect.bisect_left(self.times, until)
        for i in range(start, stop):
            share = self.share(name, i)
            if (share <= bound) if low else (share >= bound):
                return i
        return -1


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _cheapest(span: PhaseSpan, request: Request) -> float:
    healthy = [p for p in span.profiles.values() if (p.error_rate or 0) < HEALTHY]
    return min(
        (
            request.prompt_tokens * (p.input_per_mtok or 0.0)
            + request.completion_tokens * (p.output_per_mtok or 0.0)
        )
        / 1e6
        for p in healthy or span.profiles.values()
    )


def _phase(
    trace: Trace, index: int, series: _Series, first: dict[str, Try], previous_best: str | None
) -> PhaseReport:
    span = trace.phases[index]
    best = best_of(span, trace.strategy)
    requests = [r for r in trace.requests if span.started <= r.started < span.ended]
    answered = [r for r in requests if r.status == 200]
    tried_first = Counter(first[r.id].deployment for r in requests if r.id in first)
    total = len(requests) or 1
    report = PhaseReport(
        name=span.name,
        started=round(span.started, 3),
        duration=round(span.ended - span.started, 3),
        best=best,
        requests=len(requests),
        answered=len(answered),
        client_errors=len(requests) - len(answered),
        shares={name: round(tried_first[name] / total, 4) for name in span.profiles},
        best_share=round(sum(r.provider == best for r in answered) / (len(answered) or 1), 4),
        cost_usd=round(sum(r.cost_usd for r in answered), 8),
        cheapest_usd=round(sum(_cheapest(span, r) for r in answered), 8),
        overspend=0.0,
    )
    if report.cheapest_usd > 0:
        report.overspend = round(report.cost_usd / report.cheapest_usd - 1, 4)
    if previous_best is not None and previous_best != best:
        i = series.first_when(previous_best, span.started, span.ended, True, REACTED)
        if i >= 0:
            report.react_s = round(series.times[i] - span.started, 3)
            report.react_requests = sum(
                1
                for t, n in zip(series.times, series.names, strict=True)
                if span.started <= t < series.times[i] and n == previous_best
            )
        j = series.first_when(best, span.started, span.ended, False, RECOVERED)
        if j >= 0:
            report.recover_s = round(series.times[j] - span.started, 3)
    unhealthy = {n for n, p in span.profiles.items() if (p.error_rate or 0) >= UNHEALTHY}
    if unhealthy:
        settled = [r for r in requests if r.started >= span.started + SETTLE and r.id in first]
        hit = sum(first[r.id].deployment in unhealthy for r in settled)
        report.unhealthy_share = round(hit / (len(settled) or 1), 4)
    burst = [r for r in requests if r.burst and r.id in first]
    if burst:
        counts = Counter(first[r.id].deployment for r in burst)
        report.burst_shares = {n: round(counts[n] / len(burst), 4) for n in span.profiles}
    latencies = [(r.ended - r.started) * 1000 for r in answered]
    p50, p95 = _percentile(latencies, 0.5), _percentile(latencies, 0.95)
    report.latency_p50_ms = None if p50 is None else round(p50, 1)
    report.latency_p95_ms = None if p95 is None else round(p95, 1)
    return report


def _timeline(
    trace: Trace, firsts: list[Try], columns: int
) -> tuple[list[dict[str, float]], float]:
    end = trace.phases[-1].ended if trace.phases else 0.0
    width = end / columns if end > 0 else 1.0
    slices: list[Counter[str]] = [Counter() for _ in range(columns)]
    for attempt in firsts:
        slices[min(columns - 1, int(attempt.started / width))][attempt.deployment] += 1
    timeline = [
        {name: round(count / (sum(c.values()) or 1), 4) for name, count in c.items()}
        for c in slices
    ]
    return timeline, width


def report(trace: Trace, columns: int = 60) -> Report:
    first: dict[str, Try] = {}
    for attempt in trace.tries:
        first.setdefault(attempt.request_id, attempt)
    firsts = sorted(first.values(), key=lambda t: t.started)
    series = _Series(firsts)
    phases = []
    previous: str | None = None
    for index, span in enumerate(trace.phases):
        phases.append(_phase(trace, index, series, first, previous))
        previous = best_of(span, trace.strategy)
    timeline, width = _timeline(trace, firsts, columns)
    scenario = trace.scenario
    return Report(
        scenario=scenario.name,
        description=scenario.description,
        strategy=trace.strategy,
        replicas=scenario.replicas,
        requests=len(trace.requests),
        tries=len(trace.tries),
        deployments=list(scenario.deployments),
        phases=phases,
        timeline=timeline,
        slice_s=round(width, 4),
    )
