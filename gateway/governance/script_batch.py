"""Calls from many requests, sent together: every call made while the event loop runs one
iteration leaves in one batch, so a burst of requests costs Redis (and this process's
client) one round trip rather than one each, and uses a handful of connections however
many requests are in flight (redis-py's pool refuses a 101st)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from redis.exceptions import NoScriptError

MAX_IN_FLIGHT = 4  # batches on the wire at once: more calls wait for the next
MAX_BATCH = 256  # calls per batch

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """`run(items)` answers a batch: one result per item, or an exception for the item
    (an exception raised by `run` itself goes to every item of the batch)."""

    def __init__(self, run: Callable[[list[T]], Awaitable[list[R | BaseException]]]) -> None:
        self._run = run
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._in_flight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def call(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
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

    async def _send(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._run([item for item, _ in batch])
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(_copy(exc))
            if not isinstance(exc, Exception):
                raise
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        finally:
            self._in_flight -= 1
            self._schedule()

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


Script = tuple[str, Sequence[str], Sequence[Any]]  # (script, keys, args)


class ScriptBatch:
    """Script calls of one moment in one pipeline (each its own EVALSHA)."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self._coalescer: Coalescer[Script, Any] = Coalescer(self._send)

    async def call(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The script's reply; raises what Redis raised for this call or the pipeline."""
        return await self._coalescer.call((script, keys, args))

    async def _send(self, batch: list[Script]) -> list[Any]:
        results = await self._pipeline(batch)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:  # a restarted or failed-over Redis lost its scripts: load, retry
            for script in {batch[i][0] for i in missing}:
                await self._redis.script_load(script)
            again = await self._pipeline([batch[i] for i in missing])
            for i, result in zip(missing, again, strict=True):
                results[i] = result
        return results

    async def _pipeline(self, batch: Sequence[Script]) -> list[Any]:
        pipe = self._redis.pipeline(transaction=False)
        for script, keys, args in batch:
            # execute_command, not evalsha(): redis-py's cluster pipeline refuses that name
            pipe.execute_command("EVALSHA", sha(script), len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))

    async def aclose(self) -> None:
        await self._coalescer.aclose()


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


def sha(script: str) -> str:
    digest = _SHA_CACHE.get(script)
    if digest is None:
        digest = _SHA_CACHE[script] = hashlib.sha1(script.encode()).hexdigest()
    return digest
