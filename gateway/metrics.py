"""Prometheus metrics for `GET /metrics`, on a registry each app owns.

Two kinds. What requests did (requests, errors, failed tries, retries and fallbacks,
tokens, spend, durations) is counted from the finished-request records: this is a sink of
`gateway.accounting`, so the request path does no metrics work at all, and `/metrics`
delivers the batch before it renders. What the deployments and stores are like now (the
scoreboard, store health, requests in flight) is read only when Prometheus scrapes.

Label values come from the config (model, provider), the keys and teams of the config and
the store (key, team), or our own closed sets (endpoint, status, error code): never from
what a client typed, and never a provider key.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import typing
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator, Sequence

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from gateway.accounting.record import CLIENT_CLOSED, RequestRecord
from gateway.observability.budgets import BudgetUse
from gateway.scoreboard import Health, Scoreboard
from providers.chat_types import Usage
from routing.metadata import RoutingMetadata
from routing.store.errors import StoreUnavailable

log = logging.getLogger("switchboard.metrics")

# LLM calls run from tens of milliseconds (a cached short answer) to minutes (long
# generations); first tokens arrive within a few seconds or something is wrong
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)
TOKENS_PER_SECOND_BUCKETS = (5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 500, 1000)
IN_FLIGHT = "switchboard_http_requests_in_flight"
IN_FLIGHT_HELP = "HTTP requests being served, streams until their last byte."
PUBLISH_EVERY = 1.0  # seconds: how stale another worker's in-flight count may be

HEALTH_STATES: tuple[Health, ...] = typing.get_args(Health)
# what a refusal by governance is counted as
LIMIT_CODES = {"rate_limit_exceeded": "rate", "budget_exceeded": "budget"}


class StoreHealth(msgspec.Struct, frozen=True):
    store: str  # routing | governance
    backend: str  # memory | redis
    degraded: bool
    dropped: int = 0  # given up on since start: the store's outbox overflowed


class InFlight:
    """HTTP requests being served (a stream until its last byte), counted by the
    middleware with a plain integer: no lock, no metric call on the request path."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


def endpoint_label(record: RequestRecord) -> str:
    """An endpoint's name; a request refused before any route took it is recorded under
    its path, which a client chooses: those are all `other`."""
    return "other" if record.endpoint.startswith("/") else record.endpoint


def _deployment_of(record: RequestRecord) -> tuple[str, str]:
    """(canonical model, provider) that served the request; on error, the last one
    tried; ("", "") when none was (an unknown model never becomes a label)."""
    if record.routing_metadata is not None:
        return record.routing_metadata.model_canonical, record.routing_metadata.provider
    if record.attempts:
        return record.attempts[-1].model, record.attempts[-1].provider
    return "", ""


def _outcome(status: int) -> str:
    if status == CLIENT_CLOSED:
        return "client_closed"
    return "success" if status < 400 else "error"


class GatewayMetrics:
    """Every metric one app exposes; a sink of the finished-request records."""

    name = "metrics"

    def __init__(
        self,
        scoreboard: Callable[[], Scoreboard],
        stores: Callable[[], Sequence[StoreHealth]] = tuple,
        in_flight: InFlight | None = None,
        budgets: Callable[[], Awaitable[list[BudgetUse]]] | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self.in_flight = in_flight or InFlight()
        self._read_budgets = budgets
        self._budgets: list[BudgetUse] = []
        r = self.registry
        deployment = ["model", "provider"]
        self.requests = Counter(
            "switchboard_requests",
            "API requests by outcome (success, error, client_closed), labelled with the "
            "deployment that served them (on error: the last one tried, empty when none was) "
            "and the gateway key and team that sent them.",
            ["endpoint", "model", "provider", "key", "team", "outcome"],
            registry=r,
        )
        self.errors = Counter(
            "switchboard_errors",
            "Error answers sent, by endpoint, HTTP status and error code (a failure inside a "
            "started stream counts under the status its error carries).",
            ["endpoint", "status", "code"],
            registry=r,
        )
        self.outbox_dropped = Counter(
            "switchboard_store_outbox_dropped",
            "Writes a replica gave up on because its store outbox overflowed during a long "
            "Redis outage: store=routing counts outcomes missing from the shared "
            "statistics, store=governance settlements missing from the shared budgets "
            "and ledger.",
            ["store"],
            registry=r,
        )
        self._stores = stores
        self._dropped_seen: dict[str, int] = {}
        self.limited = Counter(
            "switchboard_limit_rejections",
            "Requests refused by a rate limit (limit=rate) or a budget (limit=budget).",
            ["limit", "key", "team"],
            registry=r,
        )
        self.attempts_failed = Counter(
            "switchboard_upstream_attempts_failed",
            "Upstream tries that failed, whether or not a fallback then answered.",
            [*deployment, "error"],
            registry=r,
        )
        self.retries = Counter(
            "switchboard_retries",
            "Tries made again on the same deployment after it failed.",
            deployment,
            registry=r,
        )
        self.fallbacks = Counter(
            "switchboard_fallbacks",
            "Requests moved on to another deployment after this one failed.",
            deployment,
            registry=r,
        )
        self.tokens = Counter(
            "switchboard_tokens",
            "Tokens in served requests (the upstream's usage, else the gateway's count).",
            [*deployment, "key", "team", "kind"],
            registry=r,
        )
        self.cost = Counter(
            "switchboard_cost_usd",
            "Spend in USD: the sum of routing_metadata.cost.usd of served requests.",
            [*deployment, "key", "team"],
            registry=r,
        )
        self.duration = Histogram(
            "switchboard_request_duration_seconds",
            "Time from the request's arrival to its answer's last byte, as the client saw "
            "it (failed tries, retries and fallbacks included), for answered requests.",
            ["endpoint", *deployment, "stream"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.upstream = Histogram(
            "switchboard_upstream_latency_seconds",
            "Time from the serving try's start to its last byte, per deployment.",
            deployment,
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "switchboard_ttft_seconds",
            "Time to the first output token of answered streams, per deployment.",
            deployment,
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.throughput = Histogram(
            "switchboard_tokens_per_second",
            "Output tokens per second while generating, per deployment.",
            deployment,
            buckets=TOKENS_PER_SECOND_BUCKETS,
            registry=r,
        )
        # with several workers (`serve --workers`) each publishes its in-flight count to
        # the shared folder, summed over the live ones at scrape; alone, it is read then
        self._shared_in_flight = (
            Gauge(IN_FLIGHT, IN_FLIGHT_HELP, multiprocess_mode="livesum", registry=None)
            if _multiprocess_folder() is not None
            else None
        )
        self._publisher: asyncio.Task[None] | None = None
        now: list[Collector] = [
            DeploymentCollector(scoreboard),
            _NowCollector(stores, None if self._shared_in_flight else self.in_flight),
            _BudgetCollector(lambda: self._budgets),
        ]
        for collector in now:
            r.register(collector)
        self.exposition = _exposition(r, now)
        self._children: dict[tuple[Histogram, tuple[str, ...]], Histogram] = {}

    async def deliver(self, records: Sequence[RequestRecord]) -> None:
        self.count(records)
        self.count_dropped()

    def count_dropped(self) -> None:
        """What the stores' outboxes gave up on since the last delivery: a counter, so
        that every worker's drops are summed (a gauge read at scrape time would show only
        the answering worker's)."""
        for health in self._stores():
            seen = self._dropped_seen.get(health.store, 0)
            if health.dropped > seen:
                self.outbox_dropped.labels(health.store).inc(health.dropped - seen)
                self._dropped_seen[health.store] = health.dropped

    def publish_in_flight(self) -> None:
        """With several workers: this worker's count into the shared folder (before a
        scrape, and every PUBLISH_EVERY seconds from the background)."""
        if self._shared_in_flight is not None:
            self._shared_in_flight.set(self.in_flight.count)

    async def start(self) -> None:
        if self._shared_in_flight is not None:
            self._publisher = asyncio.create_task(self._publish(), name="metrics-in-flight")

    async def aclose(self) -> None:
        if self._publisher is not None:
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
            self._publisher = None

    async def _publish(self) -> None:
        while True:
            self.publish_in_flight()
            await asyncio.sleep(PUBLISH_EVERY)

    async def read_budgets(self) -> None:
        """Before a scrape renders: the budgets' use, one governance store call. A store
        that cannot be read leaves the budget gauges out (its degraded gauge says why)."""
        if self._read_budgets is None:
            return
        try:
            self._budgets = await self._read_budgets()
        except StoreUnavailable as exc:
            log.debug("budget gauges left out: %s", exc)
            self._budgets = []

    def count(self, records: Sequence[RequestRecord]) -> None:
        """Counter increments are summed per series first, and histogram observations
        gathered per series and put into their buckets once per batch: prometheus_client
        takes a lock and builds a label tuple on every call, which per record cost more
        than everything else the record's request did after its answer left."""
        sums: dict[tuple[Counter, tuple[str, ...]], float] = {}
        observed: dict[tuple[Histogram, tuple[str, ...]], list[float]] = {}
        # most records are a plain success: those are gathered per series in one step
        served: dict[tuple[str, str, str, str, str, bool], _Served] = {}
        for record in records:
            metadata = record.routing_metadata
            if (
                metadata is None
                or record.status >= 400
                or record.attempts
                or record.usage is None
                or record.endpoint.startswith("/")
            ):
                self._count_one(record, sums, observed)
                continue
            group_labels = (
                record.endpoint,
                metadata.model_canonical,
                metadata.provider,
                record.key or "",
                record.team or "",
                record.stream,
            )
            group = served.get(group_labels)
            if group is None:
                group = served[group_labels] = _Served()
            group.add(record, metadata, record.usage)
        for group_labels, group in served.items():
            self._count_served(group_labels, group, sums, observed)
        for (counter, labels), amount in sums.items():
            if amount:
                counter.labels(*labels).inc(amount)
        for (histogram, labels), values in observed.items():
            self._observe_all(histogram, labels, values)

    def _count_served(
        self,
        labels: tuple[str, str, str, str, str, bool],
        group: _Served,
        sums: dict[tuple[Counter, tuple[str, ...]], float],
        observed: dict[tuple[Histogram, tuple[str, ...]], list[float]],
    ) -> None:
        """What `_count_one` counts of each of these successes, for all of them at once."""
        endpoint, model, provider, key, team, streamed = labels
        get = sums.get
        series: tuple[Counter, tuple[str, ...]]
        series = (self.requests, (endpoint, model, provider, key, team, "success"))
        sums[series] = get(series, 0.0) + group.requests
        series = (self.tokens, (model, provider, key, team, "prompt"))
        sums[series] = get(series, 0.0) + group.prompt_tokens
        series = (self.tokens, (model, provider, key, team, "completion"))
        sums[series] = get(series, 0.0) + group.completion_tokens
        series = (self.cost, (model, provider, key, team))
        sums[series] = get(series, 0.0) + group.cost_usd
        deployment = (model, provider)
        stream = "true" if streamed else "false"
        _gather(observed, self.duration, (endpoint, model, provider, stream)).extend(
            group.durations
        )
        _gather(observed, self.upstream, deployment).extend(group.latencies)
        if group.ttfts:
            _gather(observed, self.ttft, deployment).extend(group.ttfts)
        if group.throughputs:
            _gather(observed, self.throughput, deployment).extend(group.throughputs)

    def _count_one(
        self,
        record: RequestRecord,
        sums: dict[tuple[Counter, tuple[str, ...]], float],
        observed: dict[tuple[Histogram, tuple[str, ...]], list[float]],
    ) -> None:
        get = sums.get
        series: tuple[Counter, tuple[str, ...]]
        endpoint = endpoint_label(record)
        model, provider = _deployment_of(record)
        key, team = record.key or "", record.team or ""
        status = record.status
        if endpoint != "other":
            series = (self.requests, (endpoint, model, provider, key, team, _outcome(status)))
            sums[series] = get(series, 0.0) + 1.0
        if status >= 400 and status != CLIENT_CLOSED:
            series = (self.errors, (endpoint, str(status), record.error_code or ""))
            sums[series] = get(series, 0.0) + 1.0
            limit = LIMIT_CODES.get(record.error_code or "")
            if limit is not None:
                series = (self.limited, (limit, key, team))
                sums[series] = get(series, 0.0) + 1.0
        metadata = record.routing_metadata
        if record.attempts or (metadata is not None and status >= 400):
            self._count_tries(record, sums)
        if metadata is None:
            return
        if record.usage is not None:
            series = (self.tokens, (model, provider, key, team, "prompt"))
            sums[series] = get(series, 0.0) + record.usage.prompt_tokens
            series = (self.tokens, (model, provider, key, team, "completion"))
            sums[series] = get(series, 0.0) + record.usage.completion_tokens
        series = (self.cost, (model, provider, key, team))
        sums[series] = get(series, 0.0) + record.cost_usd
        if status >= 400:
            return
        deployment = (model, provider)
        stream = "true" if record.stream else "false"
        _gather(observed, self.duration, (endpoint, model, provider, stream)).append(
            record.duration_ms / 1000
        )
        _gather(observed, self.upstream, deployment).append(metadata.latency_ms / 1000)
        if metadata.ttft_ms is not None:
            _gather(observed, self.ttft, deployment).append(metadata.ttft_ms / 1000)
        if metadata.throughput_tps is not None:
            _gather(observed, self.throughput, deployment).append(metadata.throughput_tps)

    def _observe_all(
        self, histogram: Histogram, labels: tuple[str, ...], values: list[float]
    ) -> None:
        """`observe()` of each value, with one increment per bucket and one of the sum
        (prometheus_client's own bucket rule: the first bound the value is <= to)."""
        # the child resolved once per series: `labels()` locks and checks on every call
        child = self._children.get((histogram, labels))
        if child is None:
            child = self._children[histogram, labels] = histogram.labels(*labels)
        if len(values) == 1:
            child.observe(values[0])
            return
        bounds = child._upper_bounds
        counts = [0] * len(bounds)
        for value in values:
            counts[bisect_left(bounds, value)] += 1
        buckets = child._buckets
        for index, count in enumerate(counts):
            if count:
                buckets[index].inc(count)
        child._sum.inc(sum(values))

    def _count_tries(
        self, record: RequestRecord, sums: dict[tuple[Counter, tuple[str, ...]], float]
    ) -> None:
        """Failed tries, and what followed each: the same deployment again (a retry) or
        another one (a fallback)."""

        def add(counter: Counter, labels: tuple[str, ...], amount: float) -> None:
            key = (counter, labels)
            sums[key] = sums.get(key, 0.0) + amount

        tried = [(a.model, a.provider) for a in record.attempts]
        for attempt in record.attempts:
            add(self.attempts_failed, (attempt.model, attempt.provider, attempt.error), 1.0)
        metadata = record.routing_metadata
        if metadata is not None:
            tried.append((metadata.model_canonical, metadata.provider))
            if record.status >= 400 and record.status != CLIENT_CLOSED:
                # the serving try failed after the stream began: a failed try too
                served = (metadata.model_canonical, metadata.provider, record.error_code or "")
                add(self.attempts_failed, served, 1.0)
        for before, after in itertools.pairwise(tried):
            add(self.retries if before == after else self.fallbacks, before, 1.0)


class _Served:
    """Successful requests of one series (endpoint, deployment, key, team, stream)."""

    __slots__ = (
        "completion_tokens",
        "cost_usd",
        "durations",
        "latencies",
        "prompt_tokens",
        "requests",
        "throughputs",
        "ttfts",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost_usd = 0.0
        self.durations: list[float] = []
        self.latencies: list[float] = []
        self.ttfts: list[float] = []
        self.throughputs: list[float] = []

    def add(self, record: RequestRecord, metadata: RoutingMetadata, usage: Usage) -> None:
        self.requests += 1
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.cost_usd += record.cost_usd
        self.durations.append(record.duration_ms / 1000)
        self.latencies.append(metadata.latency_ms / 1000)
        if metadata.ttft_ms is not None:
            self.ttfts.append(metadata.ttft_ms / 1000)
        if metadata.throughput_tps is not None:
            self.throughputs.append(metadata.throughput_tps)


def _gather(
    observed: dict[tuple[Histogram, tuple[str, ...]], list[float]],
    histogram: Histogram,
    labels: tuple[str, ...],
) -> list[float]:
    values = observed.get((histogram, labels))
    if values is None:
        values = observed[histogram, labels] = []
    return values


def _exposition(registry: CollectorRegistry, now: list[Collector]) -> CollectorRegistry:
    """What `/metrics` renders. With several worker processes (`serve --workers`, which
    sets PROMETHEUS_MULTIPROC_DIR) every counter and histogram is written to that folder
    and summed over all workers at scrape; the collectors read at scrape time (`now`)
    come from the answering worker. A plain Gauge added to this module would need a
    `multiprocess_mode` to be summed right."""
    folder = _multiprocess_folder()
    if folder is None:
        return registry
    merged = CollectorRegistry()
    MultiProcessCollector(merged, folder)  # type: ignore[no-untyped-call]  # untyped upstream
    for collector in now:
        merged.register(collector)
    return merged


def _multiprocess_folder() -> str | None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    # `serve` creates it before the workers start
    return folder if folder and os.path.isdir(folder) else None


class DeploymentCollector:
    """Per-deployment gauges from the live scoreboard, built afresh at each scrape."""

    def __init__(self, scoreboard: Callable[[], Scoreboard]) -> None:
        self._scoreboard = scoreboard

    def collect(self) -> Iterator[Metric]:
        yield from deployment_families(self._scoreboard())


class _NowCollector:
    """What is true at the moment of the scrape: store health, requests in flight (None:
    the workers publish theirs to the shared folder instead)."""

    def __init__(
        self, stores: Callable[[], Sequence[StoreHealth]], in_flight: InFlight | None
    ) -> None:
        self._stores = stores
        self._in_flight = in_flight

    def collect(self) -> Iterator[Metric]:
        degraded = GaugeMetricFamily(
            "switchboard_store_degraded",
            "1 when a shared store is unreachable: store=routing routes on this replica's "
            "statistics, store=governance limits and budgets on this replica alone.",
            labels=["store", "backend"],
        )
        for health in self._stores():
            degraded.add_metric([health.store, health.backend], 1.0 if health.degraded else 0.0)
        yield degraded
        if self._in_flight is not None:
            yield GaugeMetricFamily(IN_FLIGHT, IN_FLIGHT_HELP, value=self._in_flight.count)


class _BudgetCollector:
    def __init__(self, budgets: Callable[[], list[BudgetUse]]) -> None:
        self._budgets = budgets

    def collect(self) -> Iterator[Metric]:
        labels = ["scope", "name", "period"]
        limit = GaugeMetricFamily(
            "switchboard_budget_limit_usd",
            "A budget in force, USD per period: scope=key, team or gateway.",
            labels=labels,
        )
        spent = GaugeMetricFamily(
            "switchboard_budget_spent_usd",
            "Settled spend in the budget's current period.",
            labels=labels,
        )
        reserved = GaugeMetricFamily(
            "switchboard_budget_reserved_usd",
            "Held by admitted requests not yet settled (their worst case).",
            labels=labels,
        )
        remaining = GaugeMetricFamily(
            "switchboard_budget_remaining_usd",
            "What the budget still admits: limit less spent and reserved.",
            labels=labels,
        )
        for use in self._budgets():
            values = [use.scope, use.name, use.period]
            limit.add_metric(values, use.limit_usd)
            spent.add_metric(values, use.spent_usd)
            reserved.add_metric(values, use.reserved_usd)
            remaining.add_metric(values, use.remaining_usd)
        yield from (limit, spent, reserved, remaining)


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
    age = GaugeMetricFamily(
        "switchboard_store_snapshot_age_seconds",
        "Age of the statistics snapshot routing reads.",
        value=board.snapshot_age_ms / 1000,
    )
    families: list[Metric] = [latency, ttft, throughput, error_rate, requests, errors]
    return [*families, in_flight, price, healthy, health, age]
