"""One gateway process: uvicorn on a socket bound beforehand, with the drain flag raised
on the first stop signal.

On SIGTERM (or Ctrl-C) uvicorn closes the listening socket, lets every request and
stream in flight finish for up to `drain_timeout` seconds, cancels what is left, then
runs the app's lifespan shutdown: batched metrics and store writes are flushed there
and the connection pools closed (see `gateway.app`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Generator
from types import FrameType

import uvicorn

from gateway.serving.drain import DRAIN

APP_FACTORY = "gateway.asgi:app_from_environment"
ORPHAN_CHECK_SECONDS = 1.0
LOG_FORMAT = "%(asctime)s [%(process)d] %(levelname)s %(name)s %(message)s"


def uvicorn_config(log_level: str, drain_timeout: float) -> uvicorn.Config:
    return uvicorn.Config(
        APP_FACTORY,
        factory=True,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=log_level,
        timeout_graceful_shutdown=max(1, math.ceil(drain_timeout)),  # whole seconds
        # we read no client addresses, so parsing X-Forwarded-* on every request is waste
        proxy_headers=False,
        server_header=False,
    )


class DrainingServer(uvicorn.Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        DRAIN.begin()
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        with super().capture_signals():
            yield
            # uvicorn raises the stop signal again once it has shut down, so the process
            # dies of it; a drain that finished is a clean exit: status 0
            self._captured_signals.clear()


def run_worker(
    config: uvicorn.Config, sock: socket.socket, log_level: str, parent: int | None = None
) -> None:
    """Serve until told to stop. `parent`: the supervisor's pid, for a worker process,
    which drains and exits should its supervisor die without passing SIGTERM on (killed)."""
    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT)
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    DrainingServer(config).run(sockets=[sock])


def _exit_with(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)
