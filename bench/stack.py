"""The benchmark's stack: nginx upstreams, the floor and the gateway, up for one run."""

from __future__ import annotations

import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from measure import Load, Target
from procs import free_port, start_floor, start_gateway, start_nginx, start_redis, stop_all
from upstreams import NAMES, upstream_url


@dataclass
class Stack:
    targets: dict[str, Target]  # floor, gateway (and before: another build's gateway)
    upstream_urls: dict[str, str]  # instant-json, ... -> the upstream itself
    load: Load
    banner: str  # the gateway's first line: what it serves, on which server
    tmp: Path

    def check_alive(self) -> None:
        for name in self.targets:
            log = self.tmp / f"{name}.log"
            if "Traceback" in log.read_text():
                sys.exit(f"{name} logged an error:\n{log.read_text()[-3000:]}")


@contextmanager
def running_stack(executable: str, server: str, store: str, before: str = "") -> Iterator[Stack]:
    """Starts everything (and always stops it, also on SIGTERM or Ctrl-C). `before`:
    another build's gateway executable, measured beside this one as target "before"."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))  # so `finally` runs
    ports = {name: free_port() for name in NAMES}
    gw_port, floor_port, before_port = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as tmp_s:
        tmp = Path(tmp_s)
        try:
            nginx = start_nginx(tmp, ports)
            store_url = start_redis(tmp) if store == "redis" else "memory://"
            gateway = start_gateway(tmp, ports, gw_port, store_url, executable, server)
            floor = start_floor(tmp, ports, floor_port)
            path = "/v1/chat/completions"
            targets = {
                "floor": Target("floor", f"http://127.0.0.1:{floor_port}{path}", floor.pid),
                "gateway": Target("gateway", f"http://127.0.0.1:{gw_port}{path}", gateway.pid),
            }
            procs = {"gateway": gateway, "floor": floor}
            if before:
                procs["before"] = start_gateway(
                    tmp, ports, before_port, store_url, before, server, name="before"
                )
                url = f"http://127.0.0.1:{before_port}{path}"
                targets["before"] = Target("before", url, procs["before"].pid)
            banner = (tmp / "gateway.log").read_text().split("\n", 1)[0]
            urls = {name: upstream_url(port) for name, port in ports.items()}
            stack = Stack(targets, urls, Load(nginx.pid), banner, tmp)
            yield stack
            for name, proc in procs.items():
                if proc.poll() is not None:
                    sys.exit(f"{name} died:\n{(tmp / f'{name}.log').read_text()[-3000:]}")
            stack.check_alive()
        finally:
            stop_all()
