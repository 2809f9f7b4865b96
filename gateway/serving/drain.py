"""Whether this process is draining: told to stop (SIGTERM, Ctrl-C) and finishing what it
has in flight. `/readyz` answers not-ready from that moment, so a load balancer that
still holds a connection to us stops sending requests on it."""

from __future__ import annotations

import time


class Drain:
    def __init__(self) -> None:
        self.since: float | None = None  # monotonic time the drain began

    @property
    def draining(self) -> bool:
        return self.since is not None

    def begin(self) -> None:
        if self.since is None:
            self.since = time.monotonic()

    def reset(self) -> None:
        """For tests that serve again in the same process."""
        self.since = None


# one per process: a signal is delivered to a process, and each worker is one
DRAIN = Drain()
