"""What routing learns from traffic: one outcome per upstream try, and the per-deployment
statistics that the store folds them into and routing scores on."""

from __future__ import annotations

from typing import Literal

import msgspec

CircuitState = Literal["closed", "open", "half_open"]


def deployment_id(provider: str, model: str) -> str:
    """The key a deployment's statistics live under: the same upstream model on the same
    provider shares them, whichever canonical model names it."""
    return f"{provider}/{model}"


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """How one try at a deployment ended. Times are wall-clock epoch seconds, since
    replicas on other machines read them."""

    deployment: str  # deployment_id()
    at: float  # when it ended
    ok: bool
    latency: float  # seconds, start to last byte (or to the failure)
    ttft: float | None = None  # seconds to the first output token (streams)
    completion_tokens: int | None = None
    generation: float | None = None  # seconds from the first token to the last
    error: str | None = None  # the error code, on failure
    tokens: int = 0  # prompt and completion tokens it used, counted against a `tpm`
    # health decisions taken on this outcome, shared with every replica
    cooldown_until: float = 0.0  # a 429 asked us to stay away until then
    open_until: float | None = None  # circuit: None no change, 0 closed, > 0 open until


class DeploymentStats(msgspec.Struct, frozen=True, kw_only=True):
    """One deployment in a snapshot. `None` means no data yet."""

    requests: int = 0  # in the sliding window
    errors: int = 0
    error_rate: float = 0.0
    # tries weighted by age (halved every `metrics.errors_half_life` s): how much recent
    # evidence there is, and the share of it that failed
    recent_requests: float = 0.0
    recent_error_rate: float | None = None
    # averages weighted by age (halved every `metrics.half_life` s)
    latency_ms: float | None = None
    latency_p50_ms: float | None = None  # from the window's histogram
    latency_p95_ms: float | None = None
    ttft_ms: float | None = None  # time-decayed average
    ttft_p95_ms: float | None = None
    tokens_per_second: float | None = None  # time-decayed average of output throughput
    completion_tokens: float | None = None  # time-decayed average of completion length
    in_flight: int = 0  # across replicas
    # tries started and tokens used in the last minute, every replica's (for `rpm`/`tpm`,
    # to the window's bucket: the oldest bucket counted leaves at `minute_ends`)
    minute_requests: int = 0
    minute_tokens: int = 0
    minute_ends: float = 0.0
    last_seen: float | None = None  # epoch seconds of the last outcome
    consecutive_failures: int = 0
    open_until: float = 0.0  # circuit opened until (0: closed)
    cooldown_until: float = 0.0  # rate limited until

    def circuit(self, now: float) -> CircuitState:
        if self.open_until <= 0:
            return "closed"
        return "open" if now < self.open_until else "half_open"


class PriceOverride(msgspec.Struct, frozen=True, kw_only=True):
    """A price set live in the store, over the config's (USD per million tokens)."""

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None  # defaults to the input price


def price_key(model: str, provider: str) -> str:
    return f"{model}|{provider}"


class Snapshot(msgspec.Struct, kw_only=True):
    """Everything routing reads from the store, taken in the background: no I/O on a
    request's path."""

    taken_at: float = 0.0
    stats: dict[str, DeploymentStats] = msgspec.field(default_factory=dict)
    prices: dict[str, PriceOverride] = msgspec.field(default_factory=dict)  # by price_key

    def of(self, deployment: str) -> DeploymentStats:
        return self.stats.get(deployment) or _NO_DATA


_NO_DATA = DeploymentStats()
