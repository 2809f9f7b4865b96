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
from routing.store.outbox import Entries, Outbox
from routing.store.redis_url import open_client, parse_redis_url

log = logging.getLogger("switchboard.store")

RECORD_SCRIPT = resources.files("routing.store").joinpath("redis_record.lua").read_text()
_RECORD_SHA = hashlib.sha1(RECORD_SCRIPT.encode()).hexdigest()
EXPIRE_WINDOWS = 3  # a deployment's hashes outlive its last write by this many windows

_encode = msgspec.json.Encoder().encode
_decode_price = msgspec.json.Decoder(PriceOverride).decode

# (deployment, delta or None, in-flight count or None): one script call
_Call = tuple[str, DeploymentDelta | None, int | None]


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
        self._client = open_client(parse_redis_url(url))
        self._outbox = Outbox(self.config)
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
            calls = _calls(self._outbox.entries(), reports)
            if not calls:
                return
            try:
                failed = await self._record(calls, oldest_bucket(now, self.config), now)
            except Exception as exc:  # redis, OS and bugs alike: the outbox keeps it all
                self._push_failed(_reason(exc))
                return
            self._outbox.keep([(d, delta) for d, delta, _ in failed if delta is not None], now)
            not_reported = {d for d, _, count in failed if count is not None}
            for deployment, count in reports.items():
                if deployment not in not_reported:
                    self._reported[deployment] = count

    async def _record(self, calls: Sequence[_Call], keep_from: int, now: float) -> list[_Call]:
        """Runs the script for each call in one pipeline; returns the calls that failed.
        A Redis that lost its script cache (restarted, failed over) gets it again, once."""
        results = await self._run_script(calls, keep_from, now)
        if any(isinstance(r, NoScriptError) for r in results):
            await self._client.redis.script_load(RECORD_SCRIPT)
            retried = [
                c for c, r in zip(calls, results, strict=True) if isinstance(r, NoScriptError)
            ]
            again = iter(await self._run_script(retried, keep_from, now))
            results = [next(again) if isinstance(r, NoScriptError) else r for r in results]
        failures = [(c, r) for c, r in zip(calls, results, strict=True) if isinstance(r, Exception)]
        if failures:
            self._push_failed(_reason(failures[0][1]))
        else:
            self._push_failure = None
        return [c for c, _ in failures]

    def _push_failed(self, reason: str) -> None:
        self._push_failure = reason
        self._set_degraded(reason)

    async def _run_script(self, calls: Sequence[_Call], keep_from: int, now: float) -> list[Any]:
        pipe = self._client.redis.pipeline(transaction=False)
        for deployment, delta, count in calls:
            # not pipe.evalsha(): redis-py's cluster pipeline refuses that name, as it
            # cannot know the script is loaded on every node; _record reloads it itself
            pipe.execute_command(
                "EVALSHA",
                _RECORD_SHA,
                2,
                *self.keys_of(deployment),
                keep_from,
                repr(now),
                self._expiry_ms,
                b"" if delta is None else _encode(delta),
                self.replica,
                "" if count is None else count,
            )
        return list(await pipe.execute(raise_on_error=False))

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


def _calls(entries: Entries, reports: dict[str, int]) -> list[_Call]:
    """One call per delta, in order; a deployment's in-flight count rides on its last."""
    last = {deployment: i for i, (deployment, _) in enumerate(entries)}
    calls: list[_Call] = [
        (d, delta, reports.get(d) if last[d] == i else None) for i, (d, delta) in enumerate(entries)
    ]
    calls += [(d, None, count) for d, count in reports.items() if d not in last]
    return calls


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
