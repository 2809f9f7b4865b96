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
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from importlib import resources
from typing import Any

import msgspec
from redis.exceptions import NoScriptError, RedisError

from gateway.governance.ask import Ask, RateState, Settlement, Verdict
from gateway.governance.outbox import OUTBOX_LIMIT, Batch, SettlementOutbox
from gateway.governance.script_batch import Coalescer, ScriptBatch, sha
from gateway.governance.store import GovernanceStatus, GovernanceStore
from routing.store.errors import StoreUnavailable
from routing.store.redis_url import open_client, parse_redis_url

log = logging.getLogger("switchboard.governance")

_SCRIPTS = resources.files("gateway.governance")
ADMIT_SCRIPT = _SCRIPTS.joinpath("admit.lua").read_text()
SETTLE_SCRIPT = _SCRIPTS.joinpath("settle.lua").read_text()
CLAIM_SCRIPT = """
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""
_encode = msgspec.json.Encoder().encode
_decode_replies = msgspec.json.Decoder(list[list[int]]).decode
BUCKET_TTL_S = 40 * 86400  # a budget bucket outlives its month
# how long Redis remembers the last batch a process applied: a batch sent again within
# this time (its reply was lost, or no replica had acknowledged it) is counted once
SEQUENCE_TTL_MS = 7 * 86400 * 1000
WAIT_MS = 250  # how long a flush waits for a replica's acknowledgement (Sentinel only)
PROBE_EVERY = 1.0  # seconds between pings while degraded


def _replicas_of(role: Any) -> int:
    """Replicas connected to a primary, from its ROLE reply: ["master", offset, [...]]."""
    if isinstance(role, list | tuple) and len(role) >= 3 and isinstance(role[2], list | tuple):
        return len(role[2])
    return 0


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
        ledger_days: int = 400,
        outbox_limit: int = OUTBOX_LIMIT,
    ) -> None:
        """Parses the URL (ValueError if unusable); nothing connects here. `server_time`:
        limits and holds run on Redis's clock, which all replicas share."""
        super().__init__(clock=clock, ledger_days=ledger_days)
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must not hold { or }: they pick the cluster slot")
        target = parse_redis_url(url)
        self._client = open_client(target)
        self._tag = f"{prefix}:{{gov}}"
        self._holds_key = self.key("holds")
        self._records_key = self.key("hold-records")
        self._server_time = server_time
        self._degraded: str | None = None
        self.outbox = SettlementOutbox(limit=outbox_limit)
        self._applied_key = self.key(f"settled:{self.outbox.epoch}")
        self._sending = asyncio.Lock()
        # acknowledged writes survive a failover only once a replica has them: where a
        # failover can happen (Sentinel), each flush waits for one replica
        self._sentinel = target.mode == "sentinel"
        self._replicas = 1  # connected to the primary, as ROLE said at the last flush
        self._keys_key = self.key("keys")
        self._used_key = self.key("keys-last-used")
        self._probe: asyncio.Task[None] | None = None
        self._batch = ScriptBatch(self.redis)  # idempotency claims
        self._admissions: Coalescer[Ask, Any] = Coalescer(self._admit_batch)

    def key(self, name: str) -> str:
        return f"{self._tag}:{name}"

    @property
    def redis(self) -> Any:
        return self._client.redis

    # --- scripts -------------------------------------------------------------------

    async def _script(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA, in a pipeline with the other requests' calls of this moment."""
        return await self._batch.call(script, keys, args)

    # --- admission -----------------------------------------------------------------

    async def admit(self, ask: Ask) -> Verdict:
        if self._degraded is not None:
            return self.admit_now(ask, self.now_ms())
        try:
            reply = await self._admissions.call(ask)
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

    async def _admit_batch(self, asks: list[Ask]) -> list[Any]:
        """One script call for the asks of one moment: every key once in KEYS (a
        cluster checks them), everything else in one JSON argument (packing it costs the
        client little, however many asks there are)."""
        keys = [self._holds_key, self._records_key]
        index: dict[str, int] = {}

        def at(name: str) -> int:
            found = index.get(name)
            if found is None:
                keys.append(self.key(name))
                found = index[name] = len(keys)  # Lua counts from 1
            return found

        encoded = [
            (
                ask.hold,
                ask.hold_ms,
                ask.amount,
                [(at(r.key), r.limit, r.cost) for r in ask.rates],
                [(at(b.bucket), b.limit) for b in ask.budgets],
            )
            for ask in asks
        ]
        argument = _encode({"now": self._now_value(), "ttl": BUCKET_TTL_S, "asks": encoded})
        reply = await self._eval(ADMIT_SCRIPT, keys, argument)
        return list(_decode_replies(reply))

    async def _eval(self, script: str, keys: Sequence[str], argument: bytes) -> Any:
        """EVALSHA, loading the script once if this Redis lost it (restart, failover)."""
        digest = sha(script)
        try:
            return await self.redis.execute_command("EVALSHA", digest, len(keys), *keys, argument)
        except NoScriptError:
            await self.redis.script_load(script)
            return await self.redis.execute_command("EVALSHA", digest, len(keys), *keys, argument)

    def _now_value(self) -> int:
        return -1 if self._server_time else self.now_ms()

    # --- settlement ------------------------------------------------------------------

    async def settle(
        self,
        settlements: Sequence[Settlement],
        ledger: Mapping[str, Mapping[str, int]] | None = None,
        last_used: Mapping[str, float] | None = None,
    ) -> None:
        now = self.now_ms()
        shared = []
        for settlement in settlements:
            if settlement.shared:
                shared.append(settlement)
            else:  # held here during an outage: freed here, and the spend still shared
                self.settle_now(settlement, now)
                shared.append(msgspec.structs.replace(settlement, hold="", tokens=()))
        self.outbox.add(shared, ledger, last_used)
        if self._degraded is None:
            await self._send_outbox()

    async def _send_outbox(self) -> None:
        """One pipelined round trip for every batch owed; what Redis did not take (or,
        on Sentinel, no replica acknowledged) waits in the outbox for the next flush."""
        async with self._sending:  # the flush, the probe and shutdown take turns
            batches = self.outbox.take()
            if not batches:
                return
            try:
                results = await self._settle_pipeline(batches)
                if any(isinstance(r, NoScriptError) for r in results):
                    await self.redis.script_load(SETTLE_SCRIPT)
                    results = await self._settle_pipeline(batches)
            except Exception as exc:  # sent again, once Redis answers the probe
                self._set_degraded(_reason(exc))
                return
            errors = [r for r in results if isinstance(r, Exception)]
            if errors:  # whatever it is, the batches are sent again (and count once)
                log.warning("governance settlement failed: %s", _reason(errors[0]))
                return
            confirmed = True
            if self._sentinel:
                waited = self._replicas > 0
                confirmed = not waited or int(results[-2]) >= 1
                self._replicas = _replicas_of(results[-1])
            self.outbox.applied(batches, confirmed=confirmed)

    async def _settle_pipeline(self, batches: Sequence[Batch]) -> list[Any]:
        """A script call per batch, in sequence order; on Sentinel then WAIT for one
        replica to have them all (when the primary had a replica at the last flush:
        WAIT with none would only time out) and ROLE (the replicas connected now)."""
        pipe = self.redis.pipeline(transaction=False)
        for batch in batches:
            keys, argument = self._settle_argument(batch)
            pipe.execute_command("EVALSHA", sha(SETTLE_SCRIPT), len(keys), *keys, argument)
        if self._sentinel:
            pipe.execute_command("WAIT", 1 if self._replicas > 0 else 0, WAIT_MS)
            pipe.execute_command("ROLE")
        return list(await pipe.execute(raise_on_error=False))

    def _settle_argument(self, batch: Batch) -> tuple[list[str], bytes]:
        keys = [self._holds_key, self._records_key, self._applied_key]
        index: dict[str, int] = {}

        def at(name: str) -> int:
            found = index.get(name)
            if found is None:
                keys.append(self.key(name))
                found = index[name] = len(keys)  # Lua counts from 1
            return found

        retention = (self.ledger_days + 1) * 86400
        ledger = []
        for day, fields in batch.ledger.items():
            entry: list[Any] = [at(f"ledger:{day}"), retention]
            for name, amount in fields.items():
                entry += (name, amount)
            ledger.append(entry)
        used: list[Any] = []
        if batch.used:
            used.append(at("keys-last-used"))
            for name, value in batch.used.items():
                used += (name, repr(value))
        argument = _encode(
            {
                "now": self._now_value(),
                "ttl": BUCKET_TTL_S,
                "seq": batch.seq,
                "seq_ttl": SEQUENCE_TTL_MS,
                "holds": batch.holds,
                "spent": [(at(bucket), amount) for bucket, amount in batch.spent.items()],
                "tokens": [(at(k), limit, total) for k, (limit, total) in batch.tokens.items()],
                "ledger": ledger,
                "used": used,
            }
        )
        return keys, argument

    # --- idempotency -----------------------------------------------------------------

    async def idempotency_claim(self, slot: str, started: bytes, ttl_ms: int) -> bytes | None:
        key = self.key(slot)
        async with self._unavailable_raises():
            # SET NX, and the current value when it was taken: one round trip, atomic
            reply = await self._script(CLAIM_SCRIPT, [key], [started, ttl_ms])
        return reply if isinstance(reply, bytes) else None

    async def idempotency_put(self, slot: str, record: bytes, ttl_ms: int) -> None:
        async with self._unavailable_raises():
            await self.redis.set(self.key(slot), record, px=ttl_ms)

    async def idempotency_delete(self, slot: str) -> None:
        async with self._unavailable_raises():
            await self.redis.delete(self.key(slot))

    # --- the ledger, keys and their last use ----------------------------------------

    async def ledger(self, days: Sequence[str]) -> dict[str, dict[str, int]]:
        async with self._unavailable_raises():
            pipe = self.redis.pipeline(transaction=False)
            for day in days:
                pipe.hgetall(self.key(f"ledger:{day}"))
            replies = await pipe.execute()
        return {
            day: {f.decode(): int(v) for f, v in reply.items()}
            for day, reply in zip(days, replies, strict=True)
            if reply
        }

    async def stored_keys(self) -> dict[str, bytes]:
        async with self._unavailable_raises():
            reply = await self.redis.hgetall(self._keys_key)
        return {name.decode(): data for name, data in reply.items()}

    async def put_key(self, name: str, data: bytes, *, create: bool) -> bool:
        async with self._unavailable_raises():
            if create:
                return bool(await self.redis.hsetnx(self._keys_key, name, data))
            await self.redis.hset(self._keys_key, name, data)
            return True

    async def delete_key(self, name: str) -> bool:
        async with self._unavailable_raises():
            return bool(await self.redis.hdel(self._keys_key, name))

    async def last_used(self) -> dict[str, float]:
        async with self._unavailable_raises():
            reply = await self.redis.hgetall(self._used_key)
        return {name.decode(): float(value) for name, value in reply.items()}

    @contextlib.asynccontextmanager
    async def _unavailable_raises(self) -> AsyncIterator[None]:
        """Reads and writes the admin API needs: Redis failing is a 503, not a guess."""
        try:
            yield
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"the store is unreachable: {_reason(exc)}") from exc

    # --- spend -----------------------------------------------------------------------

    async def spend(self, buckets: Sequence[str]) -> dict[str, tuple[int, int]]:
        pipe = self.redis.pipeline(transaction=False)
        for bucket in buckets:
            pipe.hmget(self.key(bucket), "spent", "held")
        async with self._unavailable_raises():
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
            if self.outbox:
                await self._send_outbox()

    def status(self) -> GovernanceStatus:
        return GovernanceStatus(
            backend=self.backend,
            degraded=self._degraded is not None,
            detail=self._degraded,
            dropped=self.outbox.dropped,
        )

    @property
    def dropped(self) -> int:
        return self.outbox.dropped

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
        await self._admissions.aclose()
        await self._batch.aclose()
        if self.outbox and self._degraded is None:
            with contextlib.suppress(Exception):
                await self._send_outbox()
        if self.outbox:
            log.warning(
                "governance store closed with %d entries unsettled in its outbox "
                "(Redis unreachable): their spend is not in the shared budgets",
                len(self.outbox),
            )
        await self._client.aclose()
