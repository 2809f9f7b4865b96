"""How a deployment's statistics are laid out, shared by every store so that the memory
and Redis stores hold the same numbers (a test runs one outcome sequence through both).

Per deployment, two hashes of numbers:
- the *window*: counters per time bucket, field `<bucket>:<name>` (`n` requests, `e`
  errors, `hl:<bin>` / `ht:<bin>` latency / TTFT histogram bins, `s` tries started and
  `tk` tokens used, which `rpm` and `tpm` limits count); buckets older than the window
  are deleted on write;
- the *state*: time-decayed averages (`lat` latency, `ttft`, `tps` throughput, `ct`
  completion length, `err` failures per try), each as three fields `<name>.s`, `.w`, `.t`;
  `seen` (last outcome), `cf` (consecutive failures), `open` (circuit open until), `cool`
  (rate limited until), and `if:<replica>` / `ifat:<replica>` (that replica's in-flight
  count and when it said so).

A time-decayed average weighs each sample by 2^-(age / half-life): it holds the weighted
sum `s` and the total weight `w` as of time `t`. The value is s / w; the weight, decayed
to now, is how much recent evidence there is (a deployment nobody has tried for a while
has little). Two of them merge exactly, in any order: bring both to the later time and
add. So outcomes are folded into one `DeploymentDelta` per deployment per flush, deltas
from any replica apply in any order, counters add and times take the max. Applying a
delta is the one write; Redis does it in a Lua script (`redis_record.lua`), memory in
`apply`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping

import msgspec

from routing.config import MetricsConfig
from routing.stats import DeploymentStats, Outcome

_LN2 = math.log(2)
_BIN_RATIO = 1.25  # histogram bins grow by 25 %: a percentile is within 12.5 % of true
_LOG_RATIO = math.log(_BIN_RATIO)
IN_FLIGHT_FRESH = 10.0  # seconds: a replica that stopped reporting is assumed gone


def bin_of(ms: float) -> int:
    return 0 if ms <= 1.0 else math.ceil(math.log(ms) / _LOG_RATIO)


def bin_upper_ms(index: int) -> float:
    return float(_BIN_RATIO**index)


def decay(elapsed: float, half_life: float) -> float:
    """The weight left to a sample `elapsed` seconds old."""
    return math.exp(-max(elapsed, 0.0) * _LN2 / half_life)


class Decayed(msgspec.Struct, kw_only=True, array_like=True):
    """Samples weighted by age: their weighted sum and total weight as of `at`."""

    total: float
    weight: float
    at: float  # epoch seconds
    half_life: float  # seconds

    def merged(self, other: Decayed) -> Decayed:
        """Both sets of samples, as of the later time (the order does not matter)."""
        at = max(self.at, other.at)
        mine, theirs = decay(at - self.at, self.half_life), decay(at - other.at, self.half_life)
        return Decayed(
            total=self.total * mine + other.total * theirs,
            weight=self.weight * mine + other.weight * theirs,
            at=at,
            half_life=self.half_life,
        )


class DeploymentDelta(msgspec.Struct, kw_only=True):
    counters: dict[str, float] = msgspec.field(default_factory=dict)  # window field → add
    averages: dict[str, Decayed] = msgspec.field(default_factory=dict)  # state name → merge
    seen: float = 0.0
    reset_failures: bool = False  # a success happened: `cf` restarts from `failures`
    failures: int = 0  # failures after the last success in this delta
    cooldown_until: float = 0.0
    open_until: float | None = None  # None no change, 0 close, > 0 open (max)


# how fast each average forgets; the completion length is a property of the traffic
# more than of the deployment's health, so it keeps a longer memory
COMPLETION_HALF_LIFE = 30.0


class Accumulator:
    """Outcomes waiting for the next write, already folded per deployment."""

    def __init__(self, config: MetricsConfig) -> None:
        self._bucket = config.bucket
        self._half_lives = {
            "lat": config.half_life,
            "ttft": config.half_life,
            "tps": config.half_life,
            "ct": COMPLETION_HALF_LIFE,
            "err": config.errors_half_life,
        }
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
        if outcome.tokens:
            count("tk", float(outcome.tokens))
        at = outcome.at
        latency_ms = outcome.latency * 1000
        self._sample(delta, "err", 0.0 if outcome.ok else 1.0, at)
        if outcome.ok:
            delta.reset_failures, delta.failures = True, 0
            count(f"hl:{bin_of(latency_ms)}")
            self._sample(delta, "lat", latency_ms, at)
            if outcome.ttft is not None:
                ttft_ms = outcome.ttft * 1000
                count(f"ht:{bin_of(ttft_ms)}")
                self._sample(delta, "ttft", ttft_ms, at)
            if outcome.completion_tokens is not None:
                self._sample(delta, "ct", float(outcome.completion_tokens), at)
                generation = outcome.generation
                if generation is None and outcome.ttft is None:
                    generation = outcome.latency  # non-streaming: the whole answer
                if generation and generation > 0 and outcome.completion_tokens > 1:
                    self._sample(delta, "tps", outcome.completion_tokens / generation, at)
        else:
            count("e")
            delta.failures += 1
        delta.seen = max(delta.seen, outcome.at)
        delta.cooldown_until = max(delta.cooldown_until, outcome.cooldown_until)
        if outcome.open_until is not None:
            delta.open_until = outcome.open_until  # the latest decision stands

    def started(self, deployment: str, tries: int, at: float) -> None:
        """`tries` began on a deployment since the last flush (for `rpm` limits)."""
        delta = self.pending.get(deployment)
        if delta is None:
            delta = self.pending[deployment] = DeploymentDelta()
        field = f"{int(at // self._bucket)}:s"
        delta.counters[field] = delta.counters.get(field, 0.0) + tries

    def _sample(self, delta: DeploymentDelta, name: str, value: float, at: float) -> None:
        """`Decayed.merged` with one sample, in place (one exp, no new object: this runs
        for every outcome)."""
        known = delta.averages.get(name)
        if known is None:
            half_life = self._half_lives[name]
            delta.averages[name] = Decayed(total=value, weight=1.0, at=at, half_life=half_life)
        elif at >= known.at:
            keep = decay(at - known.at, known.half_life)
            known.total = known.total * keep + value
            known.weight = known.weight * keep + 1.0
            known.at = at
        else:  # an outcome recorded after a later one: it is the older sample
            weight = decay(known.at - at, known.half_life)
            known.total += value * weight
            known.weight += weight

    def drain(self) -> dict[str, DeploymentDelta]:
        pending, self.pending = self.pending, {}
        return pending


MINUTE = 60.0  # what `rpm` and `tpm` limits count over


def minute_bucket(now: float, config: MetricsConfig) -> int:
    """The first bucket counted as within the last minute (the minute is counted to the
    bucket: with 10 s buckets, over the last 50 to 60 s). A bucket's tries leave the
    count at `index * bucket + MINUTE`."""
    return int((now - MINUTE) // config.bucket) + 1


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
    for name, average in delta.averages.items():
        stored = read_average(state, name, average.half_life)
        merged = average if stored is None else stored.merged(average)
        state[f"{name}.s"], state[f"{name}.w"] = merged.total, merged.weight
        state[f"{name}.t"] = merged.at
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


def in_flight_elsewhere(state: Mapping[str, float], replica: str, now: float) -> int:
    """Requests in flight on other replicas (those that reported in the last
    IN_FLIGHT_FRESH seconds)."""
    total = 0.0
    for field, raw in state.items():
        if field.startswith("if:") and field[3:] != replica:
            said_at = float(state.get("ifat:" + field[3:], 0.0))
            if now - said_at <= IN_FLIGHT_FRESH:
                total += float(raw)
    return max(0, int(total))


def read_average(state: Mapping[str, float], name: str, half_life: float) -> Decayed | None:
    weight = state.get(f"{name}.w")
    if weight is None:
        return None
    return Decayed(
        total=float(state[f"{name}.s"]),
        weight=float(weight),
        at=float(state[f"{name}.t"]),
        half_life=half_life,
    )


def _average(state: Mapping[str, float], name: str) -> float | None:
    """The value of a decayed average (its half-life does not matter for that)."""
    weight = state.get(f"{name}.w")
    if weight is None or float(weight) <= 0:
        return None
    return float(state[f"{name}.s"]) / float(weight)


def _weight_now(state: Mapping[str, float], name: str, now: float, half_life: float) -> float:
    weight = state.get(f"{name}.w")
    if weight is None:
        return 0.0
    return float(weight) * decay(now - float(state[f"{name}.t"]), half_life)


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
    minute_from = minute_bucket(now, config)
    requests = errors = started = tokens = 0.0
    oldest_counted = minute_from + int(MINUTE // config.bucket) + 1  # none yet
    latency: dict[int, float] = {}
    ttft: dict[int, float] = {}
    for field, raw in window.items():
        bucket, _, name = field.partition(":")
        index = int(bucket)
        if index < keep_from:
            continue
        value = float(raw)
        if name == "n":
            requests += value
        elif name == "e":
            errors += value
        elif name == "s" or name == "tk":
            if index >= minute_from and value > 0:
                if name == "s":
                    started += value
                else:
                    tokens += value
                oldest_counted = min(oldest_counted, index)
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
    recent_error_rate = _average(state, "err")
    return DeploymentStats(
        requests=int(requests),
        errors=int(errors),
        error_rate=round(errors / requests, 4) if requests else 0.0,
        recent_requests=round(_weight_now(state, "err", now, config.errors_half_life), 3),
        recent_error_rate=None if recent_error_rate is None else round(recent_error_rate, 4),
        latency_ms=_rounded(_average(state, "lat")),
        latency_p50_ms=_percentile(latency, successes, 0.5),
        latency_p95_ms=_percentile(latency, successes, 0.95),
        ttft_ms=_rounded(_average(state, "ttft")),
        ttft_p95_ms=_percentile(ttft, sum(ttft.values()), 0.95),
        tokens_per_second=_rounded(_average(state, "tps")),
        completion_tokens=_rounded(_average(state, "ct")),
        in_flight=max(0, int(in_flight)),
        minute_requests=int(started),
        minute_tokens=int(tokens),
        minute_ends=oldest_counted * config.bucket + MINUTE,
        last_seen=number("seen"),
        consecutive_failures=int(number("cf") or 0),
        open_until=number("open") or 0.0,
        cooldown_until=number("cool") or 0.0,
    )
