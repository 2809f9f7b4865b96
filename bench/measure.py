"""Measuring cells: load one target (the upstream directly, the floor, or the gateway)
for a few seconds, note what it cost, how fast it answered and how busy the machine was.

A cell is (upstream, format, concurrency). The realistic streaming upstream is loaded
with `stream_client.py`, which sees time to first event and the gaps between events;
every other cell with wrk and `chat.lua`, which see only a response's end.

Rounds interleave the targets (floor, gateway, then gateway, floor, ...) so that a
drift of the machine's speed or a neighbour's burst of work falls on both, and every
figure is the best of the rounds (highest req/s, lowest CPU and latency): the best is
what the code can do, the rest is other people's load.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from procs import (
    BENCH,
    GW_CPU,
    LOAD_CPU,
    PYTHON,
    TICK,
    core_busy_ticks,
    cpu_ticks,
    die_with_parent,
    pinned,
    run_delay,
)
from upstreams import model_name


@dataclass(frozen=True)
class Cell:
    upstream: str  # instant | realistic
    fmt: str  # json | sse
    concurrency: int

    @property
    def name(self) -> str:
        return f"{self.upstream}-{self.fmt}-c{self.concurrency}"

    @property
    def model(self) -> str:
        return model_name(f"{self.upstream}-{self.fmt}")

    @property
    def stream(self) -> bool:
        return self.fmt == "sse"

    @property
    def sees_events(self) -> bool:
        """Measured with the streaming client (time to first event, gaps)."""
        return self.upstream == "realistic" and self.stream


@dataclass(frozen=True)
class Target:
    name: str  # direct | floor | gateway | before (another build's gateway)
    url: str  # where chat completions are posted (for direct: the cell's own upstream)
    pid: int | None = None  # whose CPU is counted (None: the upstream, not counted)


@dataclass
class Load:
    """Who else is on the machine: pids of ours whose CPU is not somebody else's."""

    nginx_pid: int
    rounds: list[dict[str, Any]] = field(default_factory=list)


# --- one measurement ------------------------------------------------------------
def smoke(url: str, model: str, stream: bool) -> None:
    """One request before loading a target, so a broken setup fails loudly."""
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        body["stream"] = True
    headers = {"Content-Type": "application/json"}
    if key := os.environ.get("BENCH_KEY"):  # BENCH_GOVERNANCE=1
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, json.dumps(body).encode(), headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read().decode()
    except OSError as e:
        detail = e.read().decode()[:500] if hasattr(e, "read") else ""
        sys.exit(f"smoke request to {url} ({model}) failed: {e} {detail}")
    want = "[DONE]" if stream else '"chat.completion"'
    if want not in text:
        sys.exit(f"smoke request to {url} ({model}): no {want} in answer:\n{text[:1000]}")


def _run_client(cmd: list[str], marker: str, seconds: float) -> dict[str, Any]:
    out = subprocess.run(
        pinned(LOAD_CPU, cmd),
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        preexec_fn=die_with_parent,
    )
    for line in out.stdout.splitlines():
        if line.startswith(marker + " "):
            return dict(json.loads(line.split(" ", 1)[1]))
    sys.exit(f"{cmd[0]} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")


def wrk(url: str, cell: Cell, seconds: int) -> dict[str, Any]:
    cmd = ["wrk", "-t1", f"-c{cell.concurrency}", f"-d{seconds}s", "--timeout", "10s"]
    cmd += ["-s", str(BENCH / "chat.lua"), url, "--", cell.model]
    cmd += ["stream"] if cell.stream else []
    r = _run_client(cmd, "BENCH_RESULT", seconds)
    n = r["requests"]
    return {
        "requests": n,
        "rps": round(n / (r["duration_us"] / 1e6), 1),
        "p50_ms": round(r["p50_us"] / 1000, 3),
        "p99_ms": round(r["p99_us"] / 1000, 3),
        "max_ms": round(r["max_us"] / 1000, 2),
        "non_2xx": r["non_2xx"],
        "errors": r["errors"],
    }


def stream_client(url: str, cell: Cell, seconds: float) -> dict[str, Any]:
    cmd = [PYTHON, str(BENCH / "stream_client.py"), url, cell.model]
    cmd += [str(cell.concurrency), str(seconds)]
    return _run_client(cmd, "BENCH_STREAM", seconds)


def _children_ticks() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * TICK


def measure(target: Target, cell: Cell, seconds: int, load: Load) -> dict[str, Any]:
    """Load `target` with `cell` for `seconds`; its figures and the machine's load."""
    cores = core_busy_ticks()
    ours = cpu_ticks(target.pid) if target.pid else 0
    nginx = cpu_ticks(load.nginx_pid)
    clients = _children_ticks()
    delays = (run_delay(target.pid) if target.pid else 0.0, run_delay(load.nginx_pid))
    started = time.monotonic()
    if cell.sees_events:
        row = stream_client(target.url, cell, seconds)
    else:
        row = wrk(target.url, cell, seconds)
    spent = cpu_ticks(target.pid) - ours if target.pid else 0
    nginx = cpu_ticks(load.nginx_pid) - nginx
    clients = _children_ticks() - clients
    after = core_busy_ticks()
    elapsed = time.monotonic() - started
    wall = elapsed * TICK
    # how long the measured process and nginx were runnable but waiting for their core
    waited = run_delay(target.pid) - delays[0] if target.pid else None
    row["waited_gw"] = round(waited / elapsed, 3) if waited is not None else None
    row["waited_load"] = round((run_delay(load.nginx_pid) - delays[1]) / elapsed, 3)
    n = row["requests"]
    row["cpu_us_per_req"] = round(spent / TICK * 1e6 / n, 1) if target.pid and n else None
    # what the cores did beyond our processes (pinned: the target on core 0, nginx and
    # the load client on core 1), as a share of the measured time
    load_core = after[LOAD_CPU] - cores[LOAD_CPU] - nginx - clients
    if LOAD_CPU == GW_CPU:
        load_core -= spent
    row["others_core_gw"] = round(max(0.0, after[GW_CPU] - cores[GW_CPU] - spent) / wall, 3)
    row["others_core_load"] = round(max(0.0, load_core) / wall, 3)
    row["ours_core_load"] = round((nginx + clients) / wall, 3)  # nginx and the client
    load.rounds.append(
        {
            "target": target.name,
            "cell": cell.name,
            "others_core_gw": row["others_core_gw"],
            "others_core_load": row["others_core_load"],
            "waited_gw": row["waited_gw"],
            "waited_load": row["waited_load"],
        }
    )
    return row


# --- rounds ---------------------------------------------------------------------
LOWER_IS_BETTER = (
    "p50_ms",
    "p99_ms",
    "max_ms",
    "cpu_us_per_req",
    "first_event_p50_ms",
    "first_event_p99_ms",
    "gap_p50_ms",
    "gap_p99_ms",
    "gap_max_ms",
    "bunched",
)
SUMMED = ("requests", "non_2xx", "errors")


def best_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure at its best over the rounds; counts summed; the load seen, averaged."""
    best: dict[str, Any] = {}
    for key in rounds[0]:
        values = [r[key] for r in rounds if r[key] is not None]
        if key in SUMMED:
            best[key] = sum(values)
        elif not values:
            best[key] = None
        elif key.startswith(("others_", "waited_", "ours_")):
            best[key] = round(sum(values) / len(values), 3)
        elif key in LOWER_IS_BETTER:
            best[key] = min(values)
        else:
            best[key] = max(values)
    best["rounds"] = len(rounds)
    return best


def targets_for(
    cell: Cell, targets: dict[str, Target], upstream_urls: dict[str, str], all_direct: bool
) -> list[Target]:
    """Direct is needed where a figure is a latency over the upstream's: at concurrency
    1, and on the realistic upstream (`all_direct`: everywhere, to show the upstream is
    never what limits a cell)."""
    chosen = [targets["floor"], targets["gateway"]]
    if "before" in targets:
        chosen.append(targets["before"])
    if all_direct or cell.concurrency == 1 or cell.upstream == "realistic":
        url = upstream_urls[f"{cell.upstream}-{cell.fmt}"]
        chosen.insert(0, Target("direct", url))
    return chosen


def run_rounds(
    cells: list[Cell],
    targets: dict[str, Target],
    upstream_urls: dict[str, str],
    load: Load,
    *,
    rounds: int,
    seconds: int,
    warmup: int,
    all_direct: bool = False,
    quiet: bool = False,
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every (cell, target) measured `rounds` times, rounds outermost so that each
    cell's rounds are spread over the whole run; within a round, the order of the
    targets alternates. Returns the rounds' rows by (cell name, target name)."""
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for cell in cells:
        for target in targets_for(cell, targets, upstream_urls, all_direct):
            smoke(target.url, cell.model, cell.stream)
            if warmup:  # open connections, fill pools and caches
                measure(target, cell, warmup, Load(load.nginx_pid))
    for number in range(rounds):
        for cell in cells:
            order = targets_for(cell, targets, upstream_urls, all_direct)
            if number % 2:
                order.reverse()
            for target in order:
                row = measure(target, cell, seconds, load)
                results.setdefault((cell.name, target.name), []).append(row)
                if not quiet:
                    print(
                        f"  round {number + 1}/{rounds} {cell.name:<18} {target.name:<8}"
                        f" {row['rps']:>9.1f} req/s  p50 {row['p50_ms']:>7.2f} ms"
                        f"  waited for a CPU: {row['waited_gw'] or 0:.0%} (target),"
                        f" {row['waited_load']:.0%} (nginx)",
                        flush=True,
                    )
    return results


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def busyness(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """How busy the machine was while we measured: the share of each core that other
    processes used, and the share of the time the measured process (and nginx) were
    ready to run but waited for their core, which is what disturbs a measurement."""
    if not rounds:
        return {"summary": "nothing measured"}
    # core 0 counts only while the floor or the gateway ran on it: it idles otherwise
    measured = [r for r in rounds if r["target"] != "direct"] or rounds
    gw = [r["others_core_gw"] for r in measured]
    ld = [r["others_core_load"] for r in rounds]
    wait_gw = [r["waited_gw"] or 0.0 for r in measured]
    wait_ld = [r["waited_load"] for r in rounds]

    def mean(values: list[float]) -> float:
        return round(sum(values) / len(values), 3)

    summary = (
        f"other processes used {mean(gw):.0%} of core {GW_CPU} (at most {max(gw):.0%}) and"
        f" {mean(ld):.0%} of core {LOAD_CPU} (at most {max(ld):.0%}); what we measured"
        f" waited for its core {mean(wait_gw):.0%} of the time (at most {max(wait_gw):.0%}),"
        f" nginx {mean(wait_ld):.0%} (at most {max(wait_ld):.0%})"
    )
    return {
        "summary": summary,
        "core_gw_mean": mean(gw),
        "core_gw_max": max(gw),
        "core_load_mean": mean(ld),
        "core_load_max": max(ld),
        "waited_gw_mean": mean(wait_gw),
        "waited_gw_max": max(wait_gw),
        "waited_load_mean": mean(wait_ld),
        "waited_load_max": max(wait_ld),
    }
