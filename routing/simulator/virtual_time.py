"""Virtual time for asyncio: `looptime` gives an event loop whose clock stands still while
there is work and jumps to the next timer when there is none. Sleeps, backoffs and
`asyncio.timeout` all run on it, so no real time passes waiting."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import looptime

T = TypeVar("T")
EPOCH = 1_800_000_000.0  # the wall clock's reading at virtual time 0 (epoch seconds)


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a fresh virtual-time loop starting at 0."""
    # noop_cycles: looptime lets the loop spin this many idle cycles before it moves the
    # clock (so callbacks scheduled "now" run first); one is enough for asyncio's own
    # primitives and keeps each jump cheap
    loop = looptime.new_event_loop(start=0.0, noop_cycles=1)
    try:
        return loop.run_until_complete(main)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
