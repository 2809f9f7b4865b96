"""Processes the benchmark starts (and always stops), CPU accounting, machine load."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from upstreams import floor_routes, gateway_conf, nginx_conf

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = str(ROOT / ".venv/bin/python")
# What is measured (the gateway, the floor) gets core 0; nginx and the load clients
# share core 1, so the load generator never steals CPU from what is measured.
GW_CPU, LOAD_CPU = ("0", "1") if (os.cpu_count() or 1) > 1 else ("0", "0")
TICK = os.sysconf("SC_CLK_TCK")


def pinned(cpu: str, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *cmd]


_libc = ctypes.CDLL(None, use_errno=True)


def die_with_parent() -> None:
    # PR_SET_PDEATHSIG: children get SIGTERM even if this script is SIGKILLed
    _libc.prctl(1, signal.SIGTERM)


PROCS: list[subprocess.Popen[bytes]] = []  # stopped, newest first, by stop_all()


def spawn(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
    PROCS.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop_all() -> None:
    for proc in reversed(PROCS):
        stop(proc)
    PROCS.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    ok: Callable[[], bool], what: str, proc: subprocess.Popen[bytes], log: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if ok():
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"{what} not ready after {timeout:.0f}s:\n{log.read_text()[-3000:]}")


def port_open(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def healthz(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
        return bool(r.status == 200)


def _proc_stats() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, utime+stime+cutime+cstime in ticks) of every process."""
    stats: dict[int, tuple[int, int]] = {}
    for d in Path("/proc").glob("[0-9]*"):
        try:
            # after the ")" closing comm: state=0 ppid=1 ... utime=11 stime=12 cutime=13 cstime=14
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        stats[int(d.name)] = (int(f[1]), sum(int(x) for x in f[11:15]))
    return stats


def _tree(pid: int, stats: dict[int, tuple[int, int]]) -> set[int]:
    tree = {pid}
    for _ in range(8):  # generations: enough for any server's worker layout
        tree |= {p for p, (ppid, _) in stats.items() if ppid in tree}
    return tree


def cpu_ticks(pid: int) -> int:
    """utime+stime (+ reaped children's) of pid and all its live descendants, in ticks."""
    stats = _proc_stats()
    return sum(stats[p][1] for p in _tree(pid, stats) if p in stats)


def run_delay(pid: int) -> float:
    """Seconds the threads of pid and its descendants have waited for a CPU while
    runnable (the second field of /proc/TID/schedstat): how much other work on the
    machine delayed them."""
    total = 0
    for one in _tree(pid, _proc_stats()):
        for task in (Path("/proc") / str(one) / "task").glob("*"):
            try:
                total += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


def core_busy_ticks() -> dict[str, int]:
    """Busy (not idle, not iowait) ticks of each core since boot, from /proc/stat."""
    busy = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            ticks = [int(v) for v in values[:8]]
            busy[name[3:]] = sum(ticks) - ticks[3] - ticks[4]
    return busy


# --- the processes ------------------------------------------------------------
def start_nginx(tmp: Path, ports: dict[str, int]) -> subprocess.Popen[bytes]:
    (tmp / "nginx.conf").write_text(nginx_conf(tmp, ports))
    files = ["-p", f"{tmp}", "-e", f"{tmp}/nginx-error.log", "-c", f"{tmp}/nginx.conf"]
    proc = spawn(pinned(LOAD_CPU, ["nginx", *files]), tmp / "nginx.log")

    def all_up() -> bool:
        return all(port_open(p) for p in ports.values())

    wait_until(all_up, "nginx", proc, tmp / "nginx.log", 15)
    return proc


def start_redis(tmp: Path) -> str:
    port = free_port()
    cmd = pinned(LOAD_CPU, ["redis-server", "--port", str(port), "--bind", "127.0.0.1"])
    cmd += ["--save", "", "--appendonly", "no", "--dir", str(tmp)]
    proc = spawn(cmd, tmp / "redis.log")
    wait_until(lambda: port_open(port), "redis-server", proc, tmp / "redis.log", 15)
    return f"redis://127.0.0.1:{port}/0"


def start_gateway(
    tmp: Path,
    ports: dict[str, int],
    port: int,
    store: str,
    executable: str,
    server: str,
    name: str = "gateway",
    extra: str = "",
) -> subprocess.Popen[bytes]:
    """`extra`: YAML prepended to the benchmark's config (top-level sections)."""
    (tmp / "gateway.yaml").write_text(extra + gateway_conf(ports, store))
    cmd = pinned(GW_CPU, [executable, "serve", "--config", f"{tmp}/gateway.yaml"])
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--server", server] if server else []
    proc = spawn(cmd, tmp / f"{name}.log")
    wait_until(lambda: healthz(port), name, proc, tmp / f"{name}.log", 60)
    return proc


def start_floor(tmp: Path, ports: dict[str, int], port: int) -> subprocess.Popen[bytes]:
    routes = json.dumps(floor_routes(ports))
    cmd = pinned(GW_CPU, [PYTHON, str(BENCH / "floor.py"), str(port), routes])
    proc = spawn(cmd, tmp / "floor.log")
    wait_until(lambda: port_open(port), "floor", proc, tmp / "floor.log", 60)
    return proc
