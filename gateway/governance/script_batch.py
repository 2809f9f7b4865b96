"""Script calls from many requests, sent together: every call made while the event loop
runs one iteration leaves in one pipeline, so a burst of requests costs Redis (and this
process's client) one round trip rather than one each, and uses a handful of
connections however many requests are in flight (redis-py's pool refuses a 101st)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError

MAX_IN_FLIGHT = 4  # pipelines on the wire at once: more calls wait for the next
MAX_BATCH = 512  # calls per pipeline


class _Call:
    __slots__ = ("args", "future", "keys", "script")

    def __init__(
        self, script: str, keys: Sequence[str], args: Sequence[Any], future: asyncio.Future[Any]
    ) -> None:
        self.script = script
        self.keys = keys
        self.args = args
        self.future = future


class ScriptBatch:
    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self._queue: list[_Call] = []
        self._in_flight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def call(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The script's reply; raises what Redis raised for this call or the pipeline."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Call(script, keys, args, future))
        self._schedule()
        return await future

    def _schedule(self) -> None:
        if self._scheduled or self._in_flight >= MAX_IN_FLIGHT or not self._queue:
            return
        self._scheduled = True
        # after the callbacks already queued: the calls of this loop iteration go together
        asyncio.get_running_loop().call_soon(self._start)

    def _start(self) -> None:
        self._scheduled = False
        batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
        if not batch:
            return
        self._in_flight += 1
        task = asyncio.create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._schedule()

    async def _send(self, batch: list[_Call]) -> None:
        try:
            results = await self._pipeline(batch)
            missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
            if missing:  # a restarted or failed-over Redis lost its scripts: load, retry
                for script in {batch[i].script for i in missing}:
                    await self._redis.script_load(script)
                again = await self._pipeline([batch[i] for i in missing])
                for i, result in zip(missing, again, strict=True):
                    results[i] = result
        except BaseException as exc:
            for call in batch:
                if not call.future.done():
                    call.future.set_exception(_copy(exc))
            if not isinstance(exc, Exception):
                raise
        else:
            for call, result in zip(batch, results, strict=True):
                if call.future.done():
                    continue
                if isinstance(result, Exception):
                    call.future.set_exception(result)
                else:
                    call.future.set_result(result)
        finally:
            self._in_flight -= 1
            self._schedule()

    async def _pipeline(self, batch: Sequence[_Call]) -> list[Any]:
        pipe = self._redis.pipeline(transaction=False)
        for call in batch:
            # execute_command, not evalsha(): redis-py's cluster pipeline refuses that name
            pipe.execute_command(
                "EVALSHA", _sha(call.script), len(call.keys), *call.keys, *call.args
            )
        return list(await pipe.execute(raise_on_error=False))

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _copy(exc: BaseException) -> BaseException:
    """Each waiter gets its own exception (one instance raised in many tasks would pile up
    their tracebacks)."""
    if isinstance(exc, asyncio.CancelledError):
        return asyncio.CancelledError()
    try:
        return type(exc)(*exc.args)
    except Exception:
        return RuntimeError(str(exc))


_SHA_CACHE: dict[str, str] = {}


def _sha(script: str) -> str:
    sha = _SHA_CACHE.get(script)
    if sha is None:
        sha = _SHA_CACHE[script] = hashlib.sha1(script.encode()).hexdigest()
    return sha
