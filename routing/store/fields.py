"""How a deployment's statistics are laid out, shared by every store so that the memory
and Redis stores hold the same numbers (a test runs one outcome sequence through both).

Per deployment, two hashes of numbers:
- the *window*: counters per time bucket, field `<bucket>:<name>` (`n` requests, `e`
  errors, `hl:<bin>` / `ht:<bin>` latency / TTFT histogram bins); buckets older than the
  window are deleted on write;
- the *state*: EWMAs (`lat`, `ttft`, `tps`, `ct`), `seen` (last outcome), `cf`
  (consecutive failures), `open` (circuit open until), `cool` (rate limited until), and
  `if:<replica>` / `ifat:<replica>` (that replica's in-flight count and when it said so).

Outcomes are folded into one `DeploymentDelta` per deployment per flush: counters add,
EWMAs compose (`ewma * decay + contribution`), times take the max. Applying a delta is
the one write; Redis does it in a Lua script (`redis_record.lua`), memory in `apply`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping

import msgspec

from routing.config import MetricsConfig
from routing.stats import DeploymentStats, Outcome

_BIN_RATIO = 1.25  # histogram bins grow by 25 %: a percentile is within 12.5 % of true
_LOG_RATIO = math.log(_BIN_RATIO)
IN_FLIGHT_FRESH = 10.0  # seconds: a replica that stopped reporting is assumed gone


def bin_of(ms: float) -> int:
    return 0 if ms <= 1.0 else math.ceil(math.log(ms) / _LOG_RATIO)


def bin_upper_ms(index: int) -> float:
    return float(_BIN_RATIO**index)


class Ewma(msgspec.Struct, kw_only=True, array_like=True):
    """k samples composed: new = (old, or `first` when unset) * decay + contribution."""

    first: float
    decay: float = 1.0
    contribution: float = 0.0


class DeploymentDelta(msgspec.Struct, kw_only=True):
    counters: dict[str, float] = msgspec.field(default_factory=dict)  # window field → add
    ewmas: dict[str, Ewma] = msgspec.field(default_factory=dict)  # state field → update
    seen: float = 0.0
    reset_failures: bool = False  # a success happened: `cf` restarts from `failures`
    failures: int = 0  # failures after the last success in this delta
    cooldown_until: float = 0.0
    open_until: float | None = None  # None no change, 0 close, > 0 open (max)


def _ewma_step(ewma: Ewma | None, sample: float, alpha: float) -> Ewma:
    if ewma is None:
        ewma = Ewma(first=sample)
    ewma.decay *= 1 - alpha
    ewma.contribution = ewma.contribution * (1 - alpha) + alpha * sample
    return ewma


class Accumulator:
    """Outcomes waiting for the next write, already folded per deployment."""

    def __init__(self, config: MetricsConfig) -> None:
        self._bucket = config.bucket
        self._alpha = config.ewma_alpha
        self.pending: dict[str, DeploymentDelta] = {}

    def add(self, outcome: Outcome) -> None:
        delta = self.pending.get(outcome.deployment)
        if delta is None:
            delta = self.pending[outcome.deployment] = DeploymentDelta()
        prefix = f"{int(outcome.at // self._bucket)}:"
        counters = delta.counters

        def count(name: str, amount: float = 1.0) -> None:
            field = prefix + name
            counters[field] = counters.get(field, 0.0) + amount

        count("n")
        latency_ms = outcome.latency * 1000
        if outcome.ok:
            delta.reset_failures, delta.failures = True, 0
            count(f"hl:{bin_of(latency_ms)}")
            self._ewma(delta, "lat", latency_ms)
            if outcome.ttft is not None:
                ttft_ms = outcome.ttft * 1000
                count(f"ht:{bin_of(ttft_ms)}")
                self._ewma(delta, "ttft", ttft_ms)
            if outcome.completion_tokens is not None:
                self._ewma(delta, "ct", float(outcome.completion_tokens))
                generation = outcome.generation
                if generation is None and outcome.ttft is None:
                    generation = outcome.latency  # non-streaming: the whole answer
                if generation and generation > 0 and outcome.completion_tokens > 1:
                    self._ewma(delta, "tps", outcome.completion_tokens / generation)
        else:
            count("e")
            delta.failures += 1
        delta.seen = max(delta.seen, outcome.at)
        delta.cooldown_until = max(delta.cooldown_until, outcome.cooldown_until)
        if outcome.open_until is not None:
            delta.open_until = outcome.open_until  # the latest decision stands

    def _ewma(self, delta: DeploymentDelta, name: str, sample: float) -> None:
        delta.ewmas[name] = _ewma_step(delta.ewmas.get(name), sample, self._alpha)

    def drain(self) -> dict[str, DeploymentDelta]:
        pending, self.pending = self.pending, {}
        return pending


def oldest_bucket(now: float, config: MetricsConfig) -> int:
    """The first bucket still inside the window."""
    return int((now - config.window) // config.bucket) + 1


def apply(
    window: MutableMapping[str, float],
    state: MutableMapping[str, float],
    delta: DeploymentDelta,
    keep_from: int,
) -> None:
    """The write, in Python: what `redis_record.lua` does in Redis."""
    for field, amount in delta.counters.items():
        window[field] = window.get(field, 0.0) + amount
    for field in [f for f in window if int(f.split(":", 1)[0]) < keep_from]:
        del window[field]
    for name, ewma in delta.ewmas.items():
        state[name] = state.get(name, ewma.first) * ewma.decay + ewma.contribution
    state["seen"] = max(state.get("seen", 0.0), delta.seen)
    if delta.reset_failures:
        state["cf"] = float(delta.failures)
    else:
        state["cf"] = state.get("cf", 0.0) + delta.failures
    state["cool"] = max(state.get("cool", 0.0), delta.cooldown_until)
    if delta.open_until is not None:
        state["open"] = (
            0.0 if delta.open_until == 0 else max(state.get("open", 0.0), delta.open_until)
        )


def _percentile(bins: Mapping[int, float], total: float, fraction: float) -> float | None:
    if total <= 0:
        return None
    rank, seen = fraction * total, 0.0
    for index in sorted(bins):
        seen += bins[index]
        if seen >= rank:
            return round(bin_upper_ms(index), 1)
    return round(bin_upper_ms(max(bins)), 1)


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def stats_from(
    window: Mapping[str, float],
    state: Mapping[str, float],
    now: float,
    config: MetricsConfig,
) -> DeploymentStats:
    """The statistics a store's two hashes hold at `now` (values may be str or bytes
    from Redis: everything goes through float())."""
    keep_from = oldest_bucket(now, config)
    requests = errors = 0.0
    latency: dict[int, float] = {}
    ttft: dict[int, float] = {}
    for field, raw in window.items():
        bucket, _, name = field.partition(":")
        if int(bucket) < keep_from:
            continue
        value = float(raw)
        if name == "n":
            requests += value
        elif name == "e":
            errors += value
        elif name.startswith("hl:"):
            index = int(name[3:])
            latency[index] = latency.get(index, 0.0) + value
        elif name.startswith("ht:"):
            index = int(name[3:])
            ttft[index] = ttft.get(index, 0.0) + value
    in_flight = 0.0
    for field, raw in state.items():
        if field.startswith("if:"):
            said_at = float(state.get("ifat:" + field[3:], 0.0))
            if now - said_at <= IN_FLIGHT_FRESH:
                in_flight += float(raw)

    def number(name: str) -> float | None:
        raw = state.get(name)
        return None if raw is None else float(raw)

    successes = sum(latency.values())
    return DeploymentStats(
        requests=int(requests),
        errors=int(errors),
        error_rate=round(errors / requests, 4) if requests else 0.0,
        latency_ms=_rounded(number("lat")),
        latency_p50_ms=_percentile(latency, successes, 0.5),
        latency_p95_ms=_percentile(latency, successes, 0.95),
        ttft_ms=_rounded(number("ttft")),
        ttft_p95_ms=_percentile(ttft, sum(ttft.values()), 0.95),
        tokens_per_second=_rounded(number("tps")),
        completion_tokens=_rounded(number("ct")),
        in_flight=max(0, int(in_flight)),
        last_seen=number("seen"),
        consecutive_failures=int(number("cf") or 0),
        open_until=number("open") or 0.0,
        cooldown_until=number("cool") or 0.0,
    )
