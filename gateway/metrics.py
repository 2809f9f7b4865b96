"""Prometheus metrics for `GET /metrics`, on a registry each app owns.

Two kinds: what the request path counts as answers leave (requests, errors, failed
upstream attempts, tokens, spend, durations), and per-deployment gauges read from the
live scoreboard only when Prometheus scrapes, so routing's statistics cost nothing
between scrapes. Label values come from the config (model, provider) or from our own
closed sets (status, error code): never from the client, and never a provider key.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from gateway.scoreboard import Health, Scoreboard
from providers.chat_types import Usage
from providers.errors import ProviderError, SwitchboardError, UpstreamRejectedRequest
from routing.errors import RoutingFailed
from routing.metadata import Attempt, RoutingMetadata

# LLM calls run from tens of milliseconds (a cached short answer) to minutes (long
# generations); first tokens arrive within a few seconds or something is wrong
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)

HEALTH_STATES: tuple[Health, ...] = typing.get_args(Health)


def error_code(error: SwitchboardError) -> str:
    """The code as a label value. An upstream's refusal can carry the upstream's own code
    (any string it likes), so it is counted under our class's code instead."""
    if isinstance(error, UpstreamRejectedRequest):
        return UpstreamRejectedRequest.code
    return error.code


_FLUSH_EVERY = 1024  # answered requests noted before the metrics are updated anyway


class _Series:
    """The children one (model, provider, stream) updates, resolved once: `labels()`
    takes a lock and builds a tuple of strings on every call."""

    __slots__ = ("completion", "cost", "duration", "prompt", "requests", "ttft")

    def __init__(self, metrics: GatewayMetrics, model: str, provider: str, stream: bool) -> None:
        self.requests = metrics.requests.labels(model, provider, "success")
        self.duration = metrics.duration.labels(model, provider, "true" if stream else "false")
        self.ttft = metrics.ttft.labels(model, provider)
        self.prompt = metrics.tokens.labels(model, provider, "prompt")
        self.completion = metrics.tokens.labels(model, provider, "completion")
        self.cost = metrics.cost.labels(model, provider)


class GatewayMetrics:
    """Every metric one app exposes. `scoreboard` is called at scrape time only."""

    def __init__(self, scoreboard: Callable[[], Scoreboard]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "switchboard_requests",
            "Chat completion requests by outcome, labelled with the deployment that served "
            "them (on error: the last one tried, empty when none was).",
            ["model", "provider", "outcome"],
            registry=r,
        )
        self.errors = Counter(
            "switchboard_errors",
            "Error answers sent, by HTTP status and error code (a failure inside a started "
            "stream counts under the status its error carries).",
            ["status", "code"],
            registry=r,
        )
        self.attempts_failed = Counter(
            "switchboard_upstream_attempts_failed",
            "Upstream tries that failed, whether or not a fallback then answered.",
            ["model", "provider", "error"],
            registry=r,
        )
        self.tokens = Counter(
            "switchboard_tokens",
            "Tokens in answered requests (the upstream's usage, else the gateway's count).",
            ["model", "provider", "kind"],
            registry=r,
        )
        self.cost = Counter(
            "switchboard_cost_usd",
            "Spend in USD: the sum of routing_metadata.cost.usd of answered requests.",
            ["model", "provider"],
            registry=r,
        )
        self.duration = Histogram(
            "switchboard_request_duration_seconds",
            "Time from dispatch to the answer's last byte, for answered requests.",
            ["model", "provider", "stream"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "switchboard_ttft_seconds",
            "Time to the first output token of answered streams.",
            ["model", "provider"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        r.register(DeploymentCollector(scoreboard))
        self._series: dict[tuple[str, str, bool], _Series] = {}
        self._answered: list[tuple[RoutingMetadata, Usage, bool]] = []
        self._chat_errors: dict[tuple[str, str], Counter] = {}
        self._attempt_errors: dict[tuple[str, str, str], Counter] = {}

    # --- the request path ----------------------------------------------------------

    def observe(self, metadata: RoutingMetadata, usage: Usage, *, stream: bool) -> None:
        """An answered request (for a stream: once its last chunk has arrived). Only
        noted here: prometheus_client's locked updates, several per request, run in
        `flush()` (at each scrape, and every `_FLUSH_EVERY` requests)."""
        self._answered.append((metadata, usage, stream))
        if len(self._answered) >= _FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Bring the counters and histograms up to date with the answered requests."""
        answered, self._answered = self._answered, []
        totals: dict[_Series, list[float]] = {}
        for metadata, usage, stream in answered:
            key = (metadata.model_canonical, metadata.provider, stream)
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series(self, *key)
            series.duration.observe(metadata.latency_ms / 1000)
            if metadata.ttft_ms is not None:
                series.ttft.observe(metadata.ttft_ms / 1000)
            total = totals.get(series)
            if total is None:
                total = totals[series] = [0.0, 0.0, 0.0, 0.0]
            total[0] += 1
            total[1] += usage.prompt_tokens
            total[2] += usage.completion_tokens
            total[3] += metadata.cost.usd
            if metadata.attempts:
                self._failed_attempts(metadata.attempts)
        for series, (requests, prompt, completion, cost) in totals.items():
            series.requests.inc(requests)
            series.prompt.inc(prompt)
            series.completion.inc(completion)
            series.cost.inc(cost)

    def failed(self, error: SwitchboardError, *, chat: bool) -> None:
        """An error answer. `chat`: it answers a chat completion request, which then
        counts as a request with `outcome="error"`."""
        self.errors.labels(str(error.status), error_code(error)).inc()
        if not chat:
            return
        attempts = error.attempts if isinstance(error, RoutingFailed) else []
        self._failed_attempts(attempts)
        last = attempts[-1] if attempts else None
        self._chat_error(last.model if last else "", last.provider if last else "").inc()

    def stream_failed(
        self, error: SwitchboardError, model: str, provider: str, *, upstream_failed: bool = True
    ) -> None:
        """A stream that failed after it started (the error went out as its last event).
        `upstream_failed`: the serving deployment's try failed, not the gateway itself."""
        self.errors.labels(str(error.status), error_code(error)).inc()
        if upstream_failed and isinstance(error, ProviderError):
            self._attempt_failed(model, provider, error_code(error))
        self._chat_error(model, provider).inc()

    def _chat_error(self, model: str, provider: str) -> Counter:
        key = (model, provider)
        child = self._chat_errors.get(key)
        if child is None:
            child = self._chat_errors[key] = self.requests.labels(model, provider, "error")
        return child

    def _failed_attempts(self, attempts: list[Attempt]) -> None:
        for attempt in attempts:
            self._attempt_failed(attempt.model, attempt.provider, attempt.error)

    def _attempt_failed(self, model: str, provider: str, error: str) -> None:
        key = (model, provider, error)
        child = self._attempt_errors.get(key)
        if child is None:
            child = self._attempt_errors[key] = self.attempts_failed.labels(*key)
        child.inc()


class DeploymentCollector:
    """Per-deployment gauges from the live scoreboard, built afresh at each scrape."""

    def __init__(self, scoreboard: Callable[[], Scoreboard]) -> None:
        self._scoreboard = scoreboard

    def collect(self) -> Iterator[Metric]:
        yield from deployment_families(self._scoreboard())


_DEPLOYMENT = ["model", "provider", "provider_model_id"]


def _gauge(name: str, documentation: str, *extra: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=[*_DEPLOYMENT, *extra])


def deployment_families(board: Scoreboard) -> list[Metric]:
    """A statistic with no data yet (no traffic) has no sample rather than a made-up 0."""
    latency = _gauge(
        "switchboard_deployment_latency_ms",
        "Upstream latency to the last byte: stat=ewma (moving average), p50, p95 (window).",
        "stat",
    )
    ttft = _gauge(
        "switchboard_deployment_ttft_ms",
        "Time to first token of streams: stat=ewma (moving average), p95 (window).",
        "stat",
    )
    throughput = _gauge(
        "switchboard_deployment_tokens_per_second",
        "Output tokens per second while generating (moving average).",
    )
    error_rate = _gauge(
        "switchboard_deployment_error_rate", "Share of failed tries in the sliding window."
    )
    requests = _gauge(
        "switchboard_deployment_requests_window", "Tries in the sliding window, all replicas."
    )
    errors = _gauge(
        "switchboard_deployment_errors_window",
        "Failed tries in the sliding window, all replicas.",
    )
    in_flight = _gauge(
        "switchboard_deployment_in_flight", "Upstream requests in flight, all replicas."
    )
    price = _gauge(
        "switchboard_deployment_price_per_mtok",
        "Price in force, USD per million tokens: direction=input, cached_input, output.",
        "direction",
    )
    healthy = _gauge(
        "switchboard_deployment_healthy",
        "1 when routing would send this deployment a request now, else 0.",
    )
    health = _gauge(
        "switchboard_deployment_health",
        "1 for the deployment's current health state, 0 for the others.",
        "state",
    )
    seen: set[tuple[str, str, str]] = set()
    for row in board.data:
        labels = [row.model, row.provider, row.provider_model_id]
        if (key := (row.model, row.provider, row.provider_model_id)) in seen:
            continue  # the same deployment listed twice would be a duplicate series
        seen.add(key)
        stats = row.stats
        for stat, ms in (
            ("ewma", stats.latency_ms),
            ("p50", stats.latency_p50_ms),
            ("p95", stats.latency_p95_ms),
        ):
            if ms is not None:
                latency.add_metric([*labels, stat], ms)
        for stat, ms in (("ewma", stats.ttft_ms), ("p95", stats.ttft_p95_ms)):
            if ms is not None:
                ttft.add_metric([*labels, stat], ms)
        if stats.tokens_per_second is not None:
            throughput.add_metric(labels, stats.tokens_per_second)
        error_rate.add_metric(labels, stats.error_rate)
        requests.add_metric(labels, stats.requests)
        errors.add_metric(labels, stats.errors)
        in_flight.add_metric(labels, stats.in_flight)
        price.add_metric([*labels, "input"], row.input_per_mtok)
        price.add_metric([*labels, "cached_input"], row.cached_input_per_mtok)
        price.add_metric([*labels, "output"], row.output_per_mtok)
        healthy.add_metric(labels, 1.0 if row.health == "healthy" else 0.0)
        for state in HEALTH_STATES:
            health.add_metric([*labels, state], 1.0 if row.health == state else 0.0)
    degraded = GaugeMetricFamily(
        "switchboard_store_degraded",
        "1 when the shared metrics store is unreachable and routing uses local statistics.",
        labels=["backend"],
    )
    degraded.add_metric([board.store.backend], 1.0 if board.store.degraded else 0.0)
    age = GaugeMetricFamily(
        "switchboard_store_snapshot_age_seconds",
        "Age of the statistics snapshot routing reads.",
        value=board.snapshot_age_ms / 1000,
    )
    families: list[Metric] = [latency, ttft, throughput, error_rate, requests, errors]
    return [*families, in_flight, price, healthy, health, degraded, age]
