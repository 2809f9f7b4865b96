"""The metrics store shared by every replica through Redis (single, cluster or sentinel).

Keys, under a prefix (`switchboard` unless told):
- `<prefix>:{<deployment>}:window` and `<prefix>:{<deployment>}:state`: the two hashes of
  `fields.py`; the hash tag puts both on one cluster slot, so the one script that writes
  both (`redis_record.lua`) runs on one node. They expire a few windows after the last
  write (or after an open circuit or a cooldown ends), so dead deployments vanish.
- `<prefix>:prices`: price_key → PriceOverride as JSON.

Each flush is one pipelined round trip (a script call per deployment with news), each
refresh another (two HGETALL per tracked deployment and the prices). Deltas that did not
reach Redis wait in a bounded outbox for the next flush; delivery is at least once (a
flush that timed out after Redis applied it is sent again). While reads or writes fail
the store is degraded and routing reads this replica's own statistics: nothing raises
but `set_price` (StoreUnavailable), since a price only this replica knew would split them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

import msgspec
from redis.exceptions import NoScriptError, RedisError

from routing.config import MetricsConfig
from routing.stats import PriceOverride, Snapshot
from routing.store.base import MetricsStore
from routing.store.errors import StoreUnavailable
from routing.store.fields import DeploymentDelta, oldest_bucket
from routing.store.outbox import Outbox
from routing.store.redis_url import open_client, parse_redis_url

log = logging.getLogger("switchboard.store")

RECORD_SCRIPT = resources.files("routing.store").joinpath("redis_record.lua").read_text()
_RECORD_SHA = hashlib.sha1(RECORD_SCRIPT.encode()).hexdigest()
EXPIRE_WINDOWS = 3  # a deployment's hashes outlive its last write by this many windows

_encode = msgspec.json.Encoder().encode
_decode_price = msgspec.json.Decoder(PriceOverride).decode

# (deployment, delta or None, in-flight count or None, sequence number or None): one call
_Call = tuple[str, DeploymentDelta | None, int | None, int | None]
# (deployment, delta, sequence number): a delta numbered for sending, until it counts
_Sealed = tuple[str, DeploymentDelta, int]
RESEND_LIMIT = 50  # flushes a write waits for a replica's acknowledgement (Sentinel)
WAIT_MS = 250  # how long one flush waits for it


class RedisStore(MetricsStore):
    backend = "redis"

    def __init__(
        self,
        url: str,
        config: MetricsConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        replica: str | None = None,
        prefix: str = "switchboard",
    ) -> None:
        """Parses the URL (ValueError if unusable) and builds the client; nothing
        connects before the first flush."""
        super().__init__(config, clock=clock, replica=replica)
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must not hold { or }: they pick the cluster slot")
        self._prefix = prefix
        self._prices_key = f"{prefix}:prices"
        target = parse_redis_url(url)
        self._client = open_client(target)
        self._outbox = Outbox(self.config)
        # deltas numbered and sent, kept until Redis applied them (and, on Sentinel, a
        # replica acknowledged them); numbers per process, new at every start
        self._epoch = uuid.uuid4().hex
        self._seq = 0
        self._sealed: list[_Sealed] = []
        self._sealed_at = 0.0
        self._unconfirmed = 0  # flushes the sealed deltas went unacknowledged
        self._last_sent: list[_Sealed] = []  # the last deltas Redis took (for tests)
        self._sentinel = target.mode == "sentinel"
        self._replicas = 1  # connected to the primary, as ROLE said at the last flush
        self._reported: dict[str, int] = {}  # in-flight counts Redis holds from us
        self._pushing = asyncio.Lock()
        self._push_failure: str | None = None  # keeps the store degraded while writes fail
        self._expiry_ms = int(self.config.window * EXPIRE_WINDOWS * 1000)

    def keys_of(self, deployment: str) -> tuple[str, str]:
        """The window and state hashes of a deployment."""
        tagged = f"{self._prefix}:{{{deployment}}}"
        return f"{tagged}:window", f"{tagged}:state"

    @property
    def dropped(self) -> int:
        """Outcomes never shared: the outbox overflowed during an outage."""
        return self._outbox.dropped

    # --- writes --------------------------------------------------------------------

    async def _push(
        self, deltas: dict[str, DeploymentDelta], in_flight: dict[str, int], now: float
    ) -> None:
        # the loop and sync() may flush at once: take turns, so deltas land in order
        async with self._pushing:
            self._outbox.add(deltas, now)
            reports = {
                deployment: count
                for deployment, count in in_flight.items()
                if count or self._reported.get(deployment, 0) != count
            }
            if self._sealed and await self._send(self._sealed, reports, now):
                self._sealed, reports = [], {}
            if self._sealed:  # not yet applied (or not acknowledged): the rest waits
                return
            # what waits is numbered now: sent again with these numbers until it counts
            for deployment, delta in self._outbox.entries():
                self._seq += 1
                self._sealed.append((deployment, delta, self._seq))
            self._sealed_at, self._unconfirmed = now, 0
            self._outbox.clear()
            if (self._sealed or reports) and await self._send(self._sealed, reports, now):
                self._sealed = []

    async def _send(self, sealed: Sequence[_Sealed], reports: dict[str, int], now: float) -> bool:
        """Writes the numbered deltas (and the in-flight counts); True when Redis applied
        them all and, on Sentinel, a replica acknowledged them. A delta Redis already
        applied changes nothing: the script keeps the last number per replica process."""
        if sealed and now - self._sealed_at > self.config.window:
            # out of the window by now: counters Redis would drop on arrival anyway
            lost = sum(_outcomes(delta) for _, delta, _ in sealed)
            self._outbox.dropped += lost
            log.warning("metrics store outbox full: %d outcomes not shared", lost)
            sealed, self._sealed = [], []
        calls = _calls(sealed, reports)
        if not calls:
            return True
        try:
            failed, confirmed = await self._record(calls, oldest_bucket(now, self.config), now)
        except Exception as exc:  # redis, OS and bugs alike: the deltas are sent again
            self._push_failed(_reason(exc))
            return False
        not_reported = {d for d, _, count, _ in failed if count is not None}
        for deployment, count in reports.items():
            if deployment not in not_reported:
                self._reported[deployment] = count
        if failed:
            return False
        self._last_sent = list(sealed)
        if not confirmed:
            self._unconfirmed += 1
            if self._unconfirmed <= RESEND_LIMIT:
                return False
            log.warning(
                "no replica acknowledged the metrics written in the last %d flushes: kept "
                "on the primary only, a failover now would lose them",
                self._unconfirmed,
            )
        return True

    async def _record(
        self, calls: Sequence[_Call], keep_from: int, now: float
    ) -> tuple[list[_Call], bool]:
        """Runs the script for each call in one pipeline; the calls that failed, and
        whether a replica acknowledged the writes (always, but on Sentinel with
        replicas). A Redis that lost its script cache (restarted, failed over) gets it
        again, once."""
        results, confirmed = await self._run_script(calls, keep_from, now)
        if any(isinstance(r, NoScriptError) for r in results):
            await self._client.redis.script_load(RECORD_SCRIPT)
            retried = [
                c for c, r in zip(calls, results, strict=True) if isinstance(r, NoScriptError)
            ]
            again_results, confirmed = await self._run_script(retried, keep_from, now)
            again = iter(again_results)
            results = [next(again) if isinstance(r, NoScriptError) else r for r in results]
        failures = [(c, r) for c, r in zip(calls, results, strict=True) if isinstance(r, Exception)]
        if failures:
            self._push_failed(_reason(failures[0][1]))
        else:
            self._push_failure = None
        return [c for c, _ in failures], confirmed

    def _push_failed(self, reason: str) -> None:
        self._push_failure = reason
        self._set_degraded(reason)

    async def _run_script(
        self, calls: Sequence[_Call], keep_from: int, now: float
    ) -> tuple[list[Any], bool]:
        pipe = self._client.redis.pipeline(transaction=False)
        for deployment, delta, count, seq in calls:
            window, state = self.keys_of(deployment)
            # not pipe.evalsha(): redis-py's cluster pipeline refuses that name, as it
            # cannot know the script is loaded on every node; _record reloads it itself
            pipe.execute_command(
                "EVALSHA",
                _RECORD_SHA,
                3,
                window,
                state,
                f"{window[: -len(':window')]}:applied:{self._epoch}",
                keep_from,
                repr(now),
                self._expiry_ms,
                b"" if delta is None else _encode(delta),
                self.replica,
                "" if count is None else count,
                "" if seq is None else seq,
            )
        if self._sentinel:  # acknowledged writes survive a failover once a replica has them
            pipe.execute_command("WAIT", 1 if self._replicas > 0 else 0, WAIT_MS)
            pipe.execute_command("ROLE")
        results = list(await pipe.execute(raise_on_error=False))
        if not self._sentinel:
            return results, True
        waited = self._replicas > 0
        acknowledged, role = results[-2], results[-1]
        self._replicas = _replicas_of(role)
        confirmed = not waited or (isinstance(acknowledged, int) and acknowledged >= 1)
        return results[:-2], confirmed

    async def _push_price(self, key: str, price: PriceOverride | None) -> None:
        """Raises StoreUnavailable when Redis does not take the write."""
        try:
            if price is None:
                await self._client.redis.hdel(self._prices_key, key)
            else:
                await self._client.redis.hset(self._prices_key, key, _encode(price))
        except (RedisError, OSError) as exc:
            self._set_degraded(_reason(exc))
            raise StoreUnavailable(f"the metrics store is unreachable: {_reason(exc)}") from exc

    # --- reads ---------------------------------------------------------------------

    async def _pull(self, now: float) -> Snapshot | None:
        if self._push_failure is not None:
            # Redis lacks what this replica learned since: its own statistics are better
            self._set_degraded(self._push_failure)
            return None
        deployments = sorted(self._tracked)
        try:
            pipe = self._client.redis.pipeline(transaction=False)
            for deployment in deployments:
                window, state = self.keys_of(deployment)
                pipe.hgetall(window)
                pipe.hgetall(state)
            pipe.hgetall(self._prices_key)
            replies = await pipe.execute()
            windows = {d: _numbers(replies[2 * i]) for i, d in enumerate(deployments)}
            states = {d: _numbers(replies[2 * i + 1]) for i, d in enumerate(deployments)}
            snapshot = self._shared_snapshot(windows, states, self._prices, now)
        except Exception as exc:  # unreachable or unreadable: the base serves local statistics
            self._set_degraded(_reason(exc))
            return None
        self._prices = _prices(replies[-1])
        self._set_degraded(None)
        self._last_sync = now
        return msgspec.structs.replace(snapshot, prices=dict(self._prices))

    async def _close_backend(self) -> None:
        await self._client.aclose()


def _calls(sealed: Sequence[_Sealed], reports: dict[str, int]) -> list[_Call]:
    """One call per delta, in order; a deployment's in-flight count rides on its last."""
    last = {deployment: i for i, (deployment, _, _) in enumerate(sealed)}
    calls: list[_Call] = [
        (d, delta, reports.get(d) if last[d] == i else None, seq)
        for i, (d, delta, seq) in enumerate(sealed)
    ]
    calls += [(d, None, count, None) for d, count in reports.items() if d not in last]
    return calls


def _outcomes(delta: DeploymentDelta) -> int:
    return int(sum(v for field, v in delta.counters.items() if field.endswith(":n")))


def _replicas_of(role: Any) -> int:
    """Replicas connected to a primary, from its ROLE reply: ["master", offset, [...]]."""
    if isinstance(role, list | tuple) and len(role) >= 3 and isinstance(role[2], list | tuple):
        return len(role[2])
    return 0


def _numbers(reply: dict[bytes, bytes]) -> dict[str, float]:
    return {field.decode(): float(value) for field, value in reply.items()}


def _prices(reply: dict[bytes, bytes]) -> dict[str, PriceOverride]:
    prices = {}
    for key, raw in reply.items():
        try:
            prices[key.decode()] = _decode_price(raw)
        except msgspec.DecodeError:
            log.warning("ignoring an unreadable price override for %s", key.decode())
    return prices


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
