"""The models clients ask for, their deployments and prices, and routing defaults."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from providers.capabilities import CapabilityOverrides

Price = Annotated[float, Meta(ge=0)]  # USD per million tokens
Strategy = Literal["cost", "latency", "throughput", "balanced"]
Seconds = Annotated[float, Meta(gt=0)]
Share = Annotated[float, Meta(ge=0, le=1)]


class DeploymentConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    provider: str  # a key of `providers`
    model: str  # the provider's own id for the model
    # prices left out come from the model catalogue; a deployment it does not know must
    # set them (0 is a price too, for self-hosted models)
    input_per_mtok: Price | None = None
    output_per_mtok: Price | None = None
    cached_input_per_mtok: Price | None = None  # defaults to the input price
    capabilities: CapabilityOverrides | None = None  # corrections for this model
    # the vendor's limits, respected as constraints (docs/routing.md, Limits)
    max_concurrency: (
        Annotated[
            int,
            Meta(
                ge=1,
                description="Requests in flight on this deployment from one replica at most; "
                "past it the deployment is skipped. Also the capacity its load is scored on.",
            ),
        ]
        | None
    ) = None
    rpm: (
        Annotated[
            int,
            Meta(
                ge=1,
                description="Requests a minute the vendor allows, counted over every replica "
                "in the shared store (needs `routing.metrics.window` of 60 s or more); a "
                "deployment that has used them is skipped.",
            ),
        ]
        | None
    ) = None
    tpm: (
        Annotated[
            int,
            Meta(
                ge=1,
                description="Tokens a minute (prompt and completion) the vendor allows, "
                "counted like `rpm`.",
            ),
        ]
        | None
    ) = None


class ModelConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    deployments: Annotated[list[DeploymentConfig], Meta(min_length=1)]
    description: str = ""


class RetryConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Retries of the same deployment on a transient failure, before falling back."""

    attempts: Annotated[int, Meta(ge=1, le=10)] = 2  # tries per deployment, the first included
    backoff_initial: Seconds = 0.1  # exponential backoff with jitter between tries
    backoff_max: Seconds = 2.0
    retry_after_cap: Annotated[float, Meta(ge=0)] = 5.0  # a longer Retry-After falls back at once


class BalancedWeights(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The `balanced` blend: each candidate's cost and latency are normalized to 0..1
    across the candidates (cheapest/fastest 0), its error rate is taken as is (so at
    weight 1, a 10 % error rate weighs as much as a quarter of the cost spread at 0.4:
    error rates are small numbers, and a failure costs the client a retry)."""

    cost: Annotated[float, Meta(ge=0)] = 0.4
    latency: Annotated[float, Meta(ge=0)] = 0.4
    errors: Annotated[float, Meta(ge=0)] = 1.0


class ExplorationConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Probing: a deployment routing would not choose now is tried first when, with the
    optimism its staleness earns, it could beat the one chosen; prices are known, so
    `cost` never probes for price. See docs/routing.md, Exploration."""

    share: Annotated[
        float,
        Meta(
            ge=0,
            le=1,
            description="At most this share of requests are probes (a budget each "
            "request adds to and each probe spends); 0 turns probing off.",
        ),
    ] = 0.05
    optimism_half_life: Annotated[
        float,
        Meta(
            gt=0,
            description="Every this many seconds without news of a deployment, routing "
            "counts it as twice as fast (and half as failing) as last measured when "
            "asking whether it could now be the best: one twice as slow as the best is "
            "probed about this often, one nearly as good more often.",
        ),
    ] = 2.0
    health_interval: Annotated[
        float,
        Meta(
            gt=0,
            description="A deployment avoided for its errors (`circuit.avoid_error_rate`) "
            "that would otherwise be preferred gets one probe at most this often.",
        ),
    ] = 2.0
    seed: Annotated[
        int | None, Meta(description="Fixes the random draws (backoff jitter), for tests.")
    ] = None


class CircuitConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    avoid_error_rate: Annotated[
        float,
        Meta(
            ge=0,
            le=1,
            description="A deployment whose recent error estimate (time-decayed, see "
            "`metrics.errors_half_life`) reaches this is tried only after the others, "
            "and probed now and then (`exploration.health_interval`) until its recent "
            "error rate is back under half of it. 1 turns it off.",
        ),
    ] = 0.25
    consecutive_failures: Annotated[int, Meta(ge=1)] = 5
    error_rate: Share = 0.5  # over the window, once it holds `min_requests`
    min_requests: Annotated[int, Meta(ge=1)] = 20
    cooldown: Seconds = 5.0  # open this long, then one half-open probe
    auth_cooldown: Seconds = 300.0  # after the provider refused our key
    rate_limit_cooldown: Seconds = 5.0  # after a 429 that gave no Retry-After


class MetricsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    window: Seconds = 60.0  # request and error counts cover this sliding window
    bucket: Seconds = 10.0  # the window's granularity
    refresh: Annotated[float, Meta(gt=0, le=1)] = 0.5  # snapshot read from the store
    flush: Annotated[float, Meta(gt=0, le=1)] = 0.1  # outcomes written to the store
    half_life: Annotated[
        float,
        Meta(
            gt=0,
            description="Seconds after which a latency, TTFT or throughput sample weighs "
            "half as much as a new one: estimates follow a change within about this long, "
            "and old evidence fades instead of deciding forever.",
        ),
    ] = 0.25
    errors_half_life: Annotated[
        float,
        Meta(
            gt=0,
            description="The same for the recent error rate. Longer than `half_life`: a "
            "failure is a rarer, noisier signal than a latency.",
        ),
    ] = 0.5


class RoutingConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    strategy: Strategy = "balanced"
    spread_capacity: Annotated[
        float,
        Meta(
            gt=0,
            description="Requests in flight on a deployment at which its expected "
            "latency counts double (its `max_concurrency` where set): a burst spreads "
            "over the deployments in proportion to their speed instead of piling onto "
            "one.",
        ),
    ] = 32.0
    deadline: Seconds = 300.0  # seconds, retries and fallbacks included
    attempt_timeout: Seconds | None = None  # per try; else the provider's own timeouts
    retries: RetryConfig = msgspec.field(default_factory=RetryConfig)
    balanced: BalancedWeights = msgspec.field(default_factory=BalancedWeights)
    exploration: ExplorationConfig = msgspec.field(default_factory=ExplorationConfig)
    circuit: CircuitConfig = msgspec.field(default_factory=CircuitConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
