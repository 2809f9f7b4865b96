"""`serve --workers N`: N gateway processes accepting on one socket.

The parent binds the socket, starts the workers (spawned: a fresh interpreter each, as
the app and its event loop must not be forked), restarts one that dies, and on SIGTERM
or SIGINT closes its own copy of the socket (so new connections are refused, not left
queued) and passes SIGTERM on: each worker then drains as a single process does.

Each worker is a replica of its own: it reads routing's statistics and prices from the
store, and what it holds itself is only a cache of the store (plus its own in-flight
counts). Metrics are counted across workers through prometheus-client's multiprocess
mode: each worker writes its counters to files in one folder, and `/metrics` on any
worker sums them.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

import uvicorn

from gateway.serving.server import run_worker

log = logging.getLogger("switchboard.serve")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STARTUP_FAILURE = 3  # uvicorn's exit status when the app cannot start: no use restarting
STOP_GRACE = 15.0  # seconds past the drain timeout before a worker is killed


def metrics_folder() -> tuple[Path, bool]:
    """The folder the workers' metric files go in (the environment's, else a new one),
    emptied of an earlier run's files; and whether it is ours to delete at exit."""
    given = os.environ.get(MULTIPROC_ENV)
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="switchboard-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):  # counts of a previous run would be added to ours
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder, not given


class Supervisor:
    def __init__(
        self,
        config: uvicorn.Config,
        sock: socket.socket,
        workers: int,
        *,
        log_level: str,
        drain_timeout: float,
    ) -> None:
        self._config = config
        self._sock = sock
        self._count = workers
        self._log_level = log_level
        self._drain_timeout = drain_timeout
        self._context = multiprocessing.get_context("spawn")
        self._stop = threading.Event()
        self._workers: list[BaseProcess] = []

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; 1 when a worker could not start."""
        folder, ours = metrics_folder()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        try:
            self._workers = [self._start() for _ in range(self._count)]
            failed = self._watch()
        finally:
            self._stop_workers()
            if ours:
                shutil.rmtree(folder, ignore_errors=True)
        return 1 if failed else 0

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self._stop.set()

    def _start(self) -> BaseProcess:
        worker = self._context.Process(
            target=run_worker,
            args=(self._config, self._sock, self._log_level, os.getpid()),
            name="switchboard-worker",
        )
        worker.start()
        return worker

    def _watch(self) -> bool:
        """Keep N workers alive until told to stop; True when one could not start."""
        while not self._stop.wait(0.2):
            for i, worker in enumerate(self._workers):
                if worker.is_alive():
                    continue
                if worker.exitcode == STARTUP_FAILURE:
                    log.error("worker %s could not start; stopping", worker.pid)
                    return True
                log.warning(
                    "worker %s exited with %s; starting another", worker.pid, worker.exitcode
                )
                self._workers[i] = self._start()
        return False

    def _stop_workers(self) -> None:
        self._sock.close()  # refuse new connections now, rather than queue them unserved
        for worker in self._workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)
        deadline = time.monotonic() + self._drain_timeout + STOP_GRACE
        for worker in self._workers:
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                log.error("worker %s did not stop in time; killing it", worker.pid)
                worker.kill()
                worker.join(5)
