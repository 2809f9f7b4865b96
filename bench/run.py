"""Switchboard loopback benchmark, `make bench` (started by bench/run.sh).

For two nginx upstreams ("instant", and "realistic": 50 ms to the first byte, a stream's
20 chunks 2 ms apart) it measures the upstream directly, the floor (bench/floor.py, a
minimal pass-through on the gateway's own stack) and the gateway, non-streaming and
streaming, at concurrency 1 and 64, in the same run on the same cores. Every gateway
figure is reported as a ratio to (or a difference from) the floor's; the table also goes
to bench/results/latest.json.

Environment: BENCH_WARMUP / BENCH_DURATION (whole seconds per measurement, default
2 / 8), BENCH_ROUNDS (measurements of each cell and target, best kept; default 1),
BENCH_SERVER (passed as `serve --server`), BENCH_STORE (`memory`, or `redis`: a
redis-server of its own), BENCH_ONLY (words every cell to run must contain, e.g.
"realistic sse"), SWITCHBOARD (gateway executable, default .venv/bin/switchboard).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import figures
from measure import Cell, best_of, busyness, loadavg, run_rounds
from procs import BENCH, GW_CPU, LOAD_CPU, ROOT
from stack import running_stack

WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))  # whole seconds: wrk takes no fractions
DURATION = int(os.environ.get("BENCH_DURATION", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1"))
SERVER = os.environ.get("BENCH_SERVER", "")
STORE = os.environ.get("BENCH_STORE", "memory")
ONLY = os.environ.get("BENCH_ONLY", "").split()
SWITCHBOARD = os.environ.get("SWITCHBOARD", str(ROOT / ".venv/bin/switchboard"))
# another build's gateway, measured beside this one as "before" (a before/after table)
BEFORE = os.environ.get("BENCH_BEFORE", "")

CELLS = [
    Cell(upstream, fmt, concurrency)
    for upstream in ("instant", "realistic")
    for fmt in ("json", "sse")
    for concurrency in (1, 64)
]


def report(rows: dict[tuple[str, str], dict[str, Any]], cells: list[Cell]) -> None:
    head = (
        f"{'cell':<19} {'target':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'CPU µs/req':>10} {'1st ev p50/p99':>15} {'gap p99':>7} {'non-2xx':>7} {'errors':>6}"
    )
    print("\n" + head + "\n" + "-" * len(head))
    for cell in cells:
        for target in ("direct", "floor", "before", "gateway"):
            r = rows.get((cell.name, target))
            if r is None:
                continue
            cpu = r["cpu_us_per_req"]
            first = (
                f"{r['first_event_p50_ms']:.2f}/{r['first_event_p99_ms']:.2f}"
                if "first_event_p50_ms" in r
                else "-"
            )
            gap = f"{r['gap_p99_ms']:.2f}" if "gap_p99_ms" in r else "-"
            print(
                f"{cell.name:<19} {target:<8} {r['rps']:>9.1f} {r['p50_ms']:>8.2f}"
                f" {r['p99_ms']:>8.2f} {'-' if cpu is None else f'{cpu:,.0f}':>10}"
                f" {first:>15} {gap:>7} {r['non_2xx']:>7} {r['errors']:>6}"
            )


def main() -> None:
    cells = [
        c for c in CELLS if all(word in f"{c.upstream} {c.fmt} c{c.concurrency}" for word in ONLY)
    ]
    load_before = loadavg()
    started = time.time()
    with running_stack(SWITCHBOARD, SERVER, STORE, BEFORE) as stack:
        print(f"{stack.banner}\nfloor: bench/floor.py\nload average before: {load_before}")
        measured = run_rounds(
            cells,
            stack.targets,
            stack.upstream_urls,
            stack.load,
            rounds=ROUNDS,
            seconds=DURATION,
            warmup=WARMUP,
            all_direct=True,
        )
        banner, load = stack.banner, stack.load
    rows = {key: best_of(rounds) for key, rounds in measured.items()}
    report(rows, cells)
    figs = figures.compute(rows, [c.name for c in cells])
    print("\nthe gateway against the floor (same run, same cores):")
    for name, figure in figs.items():
        print(f"  {name:<32} {figures.describe(name, figure)}")
    before = figures.compute(rows, [c.name for c in cells], "before") if BEFORE else {}
    if before:
        print(f"\nbefore ({BEFORE}) against the same floor:")
        for name, figure in before.items():
            print(f"  {name:<32} {figures.describe(name, figure)}")
    print("\nissue 9's targets:")
    print("\n".join(figures.check_targets(figs)) or "  (no cell of theirs was run)")
    busy = busyness(load.rounds)
    print(f"\nmachine: {busy['summary']}; load average before {load_before}, after {loadavg()}")

    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    meta = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "gateway": banner,
        "before": BEFORE or None,
        "floor": "bench/floor.py",
        "loadavg_before": load_before,  # the machine may be shared: a high one means noise
        "busy": busy,
        "server": SERVER or "default",
        "store": STORE,
        "warmup_s": WARMUP,
        "duration_s": DURATION,
        "rounds": ROUNDS,
        "cpus": {"measured": GW_CPU, "nginx_and_clients": LOAD_CPU},
        "latency": "whole response, up to the end of a stream; first_event_*: to the "
        "first SSE event, as the streaming client saw it",
    }
    out = {
        "meta": meta,
        "rows": [{"cell": c, "target": t} | r for (c, t), r in rows.items()],
        "figures": figs,
        "figures_before": before,
        "rounds": [{"cell": c, "target": t, "rows": rs} for (c, t), rs in measured.items()],
    }
    name = "latest.json" if STORE == "memory" else f"latest-{STORE}.json"
    (results / name).write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwritten: {(results / name).relative_to(ROOT)}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # children are already stopped by running_stack's `finally`
        raise SystemExit(130) from None
