"""The governance store shared by every replica through Redis (single, cluster, sentinel).

Every key sits under `<prefix>:{gov}:`: one hash tag, so one cluster slot holds them all
and a script may touch a key's, its team's and the gateway's limits and budgets together
(see docs/governance.md for the trade-off). Admission is one EVALSHA of `admit.lua` on
the request's path; settlements go in batches, one pipelined round trip per delivery.

When Redis fails, the store is *degraded*: this replica admits on its own (the memory
store it inherits), a background probe notices Redis is back, and settlements wait in a
bounded outbox. Nothing here raises to a request because Redis is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

from gateway.governance.ask import Ask, RateState, Settlement, Verdict
from gateway.governance.store import GovernanceStatus, GovernanceStore
from routing.store.redis_url import open_client, parse_redis_url

log = logging.getLogger("switchboard.governance")

_SCRIPTS = resources.files("gateway.governance")
ADMIT_SCRIPT = _SCRIPTS.joinpath("admit.lua").read_text()
SETTLE_SCRIPT = _SCRIPTS.joinpath("settle.lua").read_text()
_SHAS = {
    script: hashlib.sha1(script.encode()).hexdigest() for script in (ADMIT_SCRIPT, SETTLE_SCRIPT)
}
BUCKET_TTL_S = 40 * 86400  # a budget bucket outlives its month
OUTBOX_LIMIT = 100_000  # settlements kept while Redis is down; older ones are dropped
PROBE_EVERY = 1.0  # seconds between pings while degraded


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class RedisGovernanceStore(GovernanceStore):
    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "switchboard",
        clock: Callable[[], float] = time.time,
        server_time: bool = True,
    ) -> None:
        """Parses the URL (ValueError if unusable); nothing connects here. `server_time`:
        limits and holds run on Redis's clock, which all replicas share."""
        super().__init__(clock=clock)
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must not hold { or }: they pick the cluster slot")
        self._client = open_client(parse_redis_url(url))
        self._tag = f"{prefix}:{{gov}}"
        self._holds_key = self.key("holds")
        self._records_key = self.key("hold-records")
        self._server_time = server_time
        self._degraded: str | None = None
        self._outbox: list[Settlement] = []
        self._probe: asyncio.Task[None] | None = None

    def key(self, name: str) -> str:
        return f"{self._tag}:{name}"

    @property
    def redis(self) -> Any:
        return self._client.redis

    def _now_arg(self) -> str:
        return "" if self._server_time else str(self.now_ms())

    # --- scripts -------------------------------------------------------------------

    async def _script(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA, loading the script once if this Redis lost it (restart, failover)."""
        sha = _SHAS[script]
        try:
            return await self.redis.execute_command("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.redis.script_load(script)
            return await self.redis.execute_command("EVALSHA", sha, len(keys), *keys, *args)

    # --- admission -----------------------------------------------------------------

    async def admit(self, ask: Ask) -> Verdict:
        if self._degraded is not None:
            return self.admit_now(ask, self.now_ms())
        keys: list[str] = [self._holds_key, self._records_key]
        keys += [self.key(rate.key) for rate in ask.rates]
        keys += [self.key(budget.bucket) for budget in ask.budgets]
        args: list[Any] = [
            self._now_arg(),
            ask.hold,
            ask.hold_ms,
            ask.amount,
            len(ask.rates),
            len(ask.budgets),
            BUCKET_TTL_S,
        ]
        for rate in ask.rates:
            args += [rate.limit, rate.cost]
        args += [budget.limit for budget in ask.budgets]
        try:
            reply = await self._script(ADMIT_SCRIPT, keys, args)
        except Exception as exc:  # unreachable, timed out, or worse: limit locally
            self._set_degraded(_reason(exc))
            return self.admit_now(ask, self.now_ms())
        if reply[0] != 1:
            return Verdict(allowed=False, shared=True, refused=reply[1], retry_after_ms=reply[2])
        states = tuple(
            RateState(remaining=reply[1 + 2 * i], reset_ms=reply[2 + 2 * i])
            for i in range(len(ask.rates))
        )
        return Verdict(allowed=True, shared=True, rates=states)

    # --- settlement ------------------------------------------------------------------

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        now = self.now_ms()
        shared = []
        for settlement in settlements:
            if settlement.shared:
                shared.append(settlement)
            else:
                self.settle_now(settlement, now)
        self._outbox.extend(shared)
        if len(self._outbox) > OUTBOX_LIMIT:
            dropped = len(self._outbox) - OUTBOX_LIMIT
            log.warning("governance outbox full: %d settlements dropped", dropped)
            del self._outbox[:dropped]
        if self._outbox and self._degraded is None:
            await self._send_outbox()

    async def _send_outbox(self) -> None:
        batch, self._outbox = self._outbox, []
        try:
            results = await self._settle_pipeline(batch)
            if any(isinstance(r, NoScriptError) for r in results):
                await self.redis.script_load(SETTLE_SCRIPT)
                results = await self._settle_pipeline(batch)
        except Exception as exc:
            self._outbox[:0] = batch
            self._set_degraded(_reason(exc))
            return
        failed = [s for s, r in zip(batch, results, strict=True) if isinstance(r, Exception)]
        if failed:
            self._outbox[:0] = failed
            log.warning("%d settlements failed: %s", len(failed), results[0])

    async def _settle_pipeline(self, batch: Sequence[Settlement]) -> list[Any]:
        pipe = self.redis.pipeline(transaction=False)
        for settlement in batch:
            keys: list[str] = [self._holds_key, self._records_key]
            keys += [self.key(bucket) for bucket in settlement.buckets]
            keys += [self.key(key) for key, _, _ in settlement.tokens]
            args: list[Any] = [
                self._now_arg(),
                settlement.hold,
                settlement.amount,
                settlement.actual,
                len(settlement.buckets),
                len(settlement.tokens),
                BUCKET_TTL_S,
            ]
            for _, limit, tokens in settlement.tokens:
                args += [limit, tokens]
            pipe.execute_command("EVALSHA", _SHAS[SETTLE_SCRIPT], len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))

    # --- spend -----------------------------------------------------------------------

    async def spend(self, buckets: Sequence[str]) -> dict[str, tuple[int, int]]:
        pipe = self.redis.pipeline(transaction=False)
        for bucket in buckets:
            pipe.hmget(self.key(bucket), "spent", "held")
        replies = await pipe.execute()
        return {
            bucket: (int(reply[0] or 0), max(0, int(reply[1] or 0)))
            for bucket, reply in zip(buckets, replies, strict=True)
        }

    # --- degraded mode -----------------------------------------------------------------

    def _set_degraded(self, reason: str) -> None:
        if self._degraded is None:
            log.warning("governance store degraded, limiting on this replica alone: %s", reason)
        self._degraded = reason

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(PROBE_EVERY)
            if self._degraded is None:
                continue
            try:
                await self.redis.ping()
            except Exception as exc:
                self._degraded = _reason(exc)
                continue
            log.warning("governance store reachable again")
            self._degraded = None
            if self._outbox:
                await self._send_outbox()

    def status(self) -> GovernanceStatus:
        return GovernanceStatus(
            backend=self.backend, degraded=self._degraded is not None, detail=self._degraded
        )

    async def start(self) -> None:
        """Connects once now: a cluster client learns the slots before the first burst of
        requests (many first commands at once can fail while it does)."""
        try:
            await self.redis.ping()
        except Exception as exc:
            self._set_degraded(_reason(exc))
        self._probe = asyncio.create_task(self._probe_loop(), name="governance-probe")

    async def aclose(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        if self._outbox and self._degraded is None:
            with contextlib.suppress(Exception):
                await self._send_outbox()
        await self._client.aclose()
