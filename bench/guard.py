"""`make bench-guard`: a short benchmark that fails when the gateway lost ground on the floor.

It measures the cells behind issue 9's targets (instant upstream at concurrency 1 and
64, JSON and SSE; the realistic stream at 64) for the floor and the gateway, and the
upstream directly where a figure is a latency over it, in rounds that interleave the
targets; each figure is the best of its rounds (bench/measure.py). Every figure is a
ratio to the floor, or a latency over the floor's, measured in the same minute, so it
means the same on a fast and on a slow day of this VM.

A figure that is worse than `bench/baseline.json` by more than its tolerance is measured
again (more rounds, best of all) before it counts: a neighbour's test run slows down a
round or two, not every round. Exit status: 0 all figures within tolerance, 1 a figure
regressed, 2 the run itself failed (errors or non-2xx answers), 3 inconclusive: a figure
looked worse (by less than twice its tolerance) while what was measured spent more than
a tenth of its time waiting for its core, taken by other processes (it says how much).

usage: python bench/guard.py [--update] [--rounds N] [--seconds S]
  --update writes the measured figures to bench/baseline.json (see docs/performance.md,
  "Refreshing the baseline"): do it on purpose, on a quiet machine, and commit it.
Environment: SWITCHBOARD (gateway executable), BENCH_SERVER, BENCH_STORE as for run.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

import figures
from measure import Cell, best_of, busyness, loadavg, run_rounds
from procs import BENCH, ROOT
from stack import running_stack

BASELINE = BENCH / "baseline.json"
CELLS = [
    Cell("instant", "json", 1),
    Cell("instant", "sse", 1),
    Cell("instant", "json", 64),
    Cell("instant", "sse", 64),
    Cell("realistic", "sse", 64),
]

# figure -> (better, tolerance, unit). A ratio may worsen by `tolerance` of the
# baseline's value; a latency (ms over the floor's) by `tolerance` milliseconds.
# Set from repeated runs on this 2-core VM with the other engineers' tests running
# (docs/performance.md, "How noisy is the guard").
GUARDED: dict[str, tuple[str, float, str]] = {
    "instant-json-c64.rps": ("higher", 0.15, "ratio"),
    "instant-sse-c64.rps": ("higher", 0.10, "ratio"),
    "instant-json-c64.cpu": ("lower", 0.15, "ratio"),
    "instant-sse-c64.cpu": ("lower", 0.10, "ratio"),
    "instant-json-c1.added_p50": ("lower", 0.10, "ms"),
    "instant-sse-c1.added_p50": ("lower", 0.20, "ms"),
    "realistic-sse-c64.added_p50": ("lower", 2.0, "ms"),
    "realistic-sse-c64.first_event_p50": ("lower", 2.5, "ms"),
}
RETRIES = 2  # extra sets of rounds for figures that look regressed
# A figure that looks regressed is reported as inconclusive (exit 3) rather than as
# regressed when, during its cell's rounds, what was measured spent more than this share
# of the time waiting for its core (busy_cells)
BUSY = 0.10
# ... unless it is worse by more than this many times its tolerance, more than a busy
# machine made any figure move in repeated runs of one build
BUSY_SLACK = 2.0


def limit(name: str, baseline: float) -> float:
    better, tolerance, unit = GUARDED[name]
    if unit == "ms":
        return baseline + tolerance
    return baseline * (1 - tolerance) if better == "higher" else baseline * (1 + tolerance)


def within(name: str, value: float, baseline: float, slack: float = 1.0) -> bool:
    """`slack`: a multiple of the tolerance (2: twice as much room)."""
    bound = baseline + slack * (limit(name, baseline) - baseline)
    return value >= bound if GUARDED[name][0] == "higher" else value <= bound


def cell_of(figure: str) -> str:
    return figure.split(".", 1)[0]


def regressed(figs: dict[str, dict[str, float]], base: dict[str, float]) -> list[str]:
    return [
        name
        for name in GUARDED
        if name in base and (name not in figs or not within(name, figs[name]["value"], base[name]))
    ]


def load_baseline() -> dict[str, float]:
    if not BASELINE.exists():
        return {}
    data = json.loads(BASELINE.read_text())
    return {name: float(entry["value"]) for name, entry in data["figures"].items()}


def commit() -> str:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def busy_cells(rounds: list[dict[str, Any]]) -> dict[str, float]:
    """cell -> the share of its rounds' time that the measured process (or nginx) was
    ready to run but waited for its core: what other work on the machine cost it."""
    waits: dict[str, list[float]] = {}
    for r in rounds:
        waited = waits.setdefault(r["cell"], [])
        if r["target"] != "direct":
            waited.append(max(r["waited_gw"] or 0.0, r["waited_load"]))
    return {cell: sum(w) / len(w) for cell, w in waits.items() if w}


def report(
    figs: dict[str, dict[str, float]], base: dict[str, float], busy: dict[str, float]
) -> tuple[list[str], list[str]]:
    """Prints every guarded figure against its baseline; returns the regressed ones and
    those that only look regressed, measured while the machine was too busy to tell."""
    print(f"\n{'figure':<36} {'baseline':>9} {'now':>9} {'limit':>9}  verdict")
    failed: list[str] = []
    doubtful: list[str] = []
    for name, (better, _, _) in GUARDED.items():
        now = figs.get(name, {}).get("value")
        if name not in base:
            shown = "-" if now is None else f"{now:.3f}"
            print(f"{name:<36} {'-':>9} {shown:>9} {'-':>9}  (no baseline)")
            continue
        bound = limit(name, base[name])
        if now is None:
            verdict = "NOT MEASURED"
            failed.append(name)
        elif (
            not within(name, now, base[name])
            and within(name, now, base[name], BUSY_SLACK)
            and busy.get(cell_of(name), 0.0) > BUSY
        ):
            waited = busy[cell_of(name)]
            verdict = f"worse, but it waited {waited:.0%} of the time for a CPU: inconclusive"
            doubtful.append(name)
        elif not within(name, now, base[name]):
            verdict = "REGRESSED"
            failed.append(name)
        else:
            gained = now > base[name] if better == "higher" else now < base[name]
            margin = abs(now - base[name]) > abs(bound - base[name])
            verdict = "ok (better than the baseline: refresh it?)" if gained and margin else "ok"
        print(
            f"{name:<36} {base[name]:>9.3f} {now if now is not None else float('nan'):>9.3f}"
            f" {bound:>9.3f}  {verdict}"
        )
        if name in failed + doubtful and now is not None:
            print(f"{'':<36} {figures.describe(name, figs[name])}")
    return failed, doubtful


def failures_in(rows: dict[Any, dict[str, Any]]) -> list[str]:
    return [
        f"{cell} {target}: {r['non_2xx']} non-2xx, {r['errors']} errors"
        for (cell, target), r in rows.items()
        if r["non_2xx"] or r["errors"]
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--update", action="store_true", help="write bench/baseline.json")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per cell and target")
    parser.add_argument("--seconds", type=int, default=2, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per target")
    args = parser.parse_args()

    base = load_baseline()
    if not base and not args.update:
        print("no bench/baseline.json: run `make bench-baseline` first", file=sys.stderr)
        return 2
    executable = os.environ.get("SWITCHBOARD", str(ROOT / ".venv/bin/switchboard"))
    load_before = loadavg()
    started = time.time()
    with running_stack(
        executable, os.environ.get("BENCH_SERVER", ""), os.environ.get("BENCH_STORE", "memory")
    ) as stack:
        print(f"{stack.banner}\nload average before: {load_before}")

        def measure(cells: list[Cell]) -> dict[tuple[str, str], list[dict[str, Any]]]:
            return run_rounds(
                cells,
                stack.targets,
                stack.upstream_urls,
                stack.load,
                rounds=args.rounds,
                seconds=args.seconds,
                warmup=args.warmup,
            )

        measured = measure(CELLS)
        names = [c.name for c in CELLS]
        figs = figures.compute({k: best_of(v) for k, v in measured.items()}, names)
        for attempt in range(RETRIES if not args.update else 0):
            doubtful = regressed(figs, base)
            if not doubtful:
                break
            again = [c for c in CELLS if c.name in {cell_of(n) for n in doubtful}]
            retry = f"({attempt + 1}/{RETRIES})"
            print(f"\nlooks regressed: {', '.join(doubtful)}; measuring again {retry}")
            for key, more in measure(again).items():
                measured[key].extend(more)
            figs = figures.compute({k: best_of(v) for k, v in measured.items()}, names)
        load = stack.load
    rows = {k: best_of(v) for k, v in measured.items()}
    busy = busyness(load.rounds)
    print(f"\nmachine: {busy['summary']}; load average before {load_before}, after {loadavg()}")
    broken = failures_in(rows)
    if broken:
        print("the run itself failed:\n  " + "\n  ".join(broken), file=sys.stderr)
        return 2

    if args.update:
        entry = {
            name: {
                "value": figs[name]["value"],
                "gateway": figs[name]["gateway"],
                "floor": figs[name]["floor"],
            }
            for name in GUARDED
            if name in figs
        }
        meta = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "commit": commit(),
            "rounds": args.rounds,
            "seconds": args.seconds,
            "loadavg_before": load_before,
            "busy": busy,
        }
        BASELINE.write_text(json.dumps({"meta": meta, "figures": entry}, indent=2) + "\n")
        report(figs, {n: e["value"] for n, e in entry.items()}, {})
        print(f"\nwritten: {BASELINE.relative_to(ROOT)} (commit it, saying why it moved)")
        return 0

    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    (results / "guard.json").write_text(
        json.dumps(
            {
                "busy": busy,
                "figures": figs,
                "baseline": base,
                "rounds": [{"cell": c, "target": t, "rows": rs} for (c, t), rs in measured.items()],
            },
            indent=2,
        )
        + "\n"
    )
    failed, doubtful = report(figs, base, busy_cells(load.rounds))
    if failed:
        print(
            f"\nbench-guard: {len(failed)} figure(s) worse than bench/baseline.json allows:"
            f" {', '.join(failed)}.\nMeasured on a machine calm enough to tell: the change"
            " costs speed (docs/performance.md says what to do)."
        )
        return 1
    if doubtful:
        print(
            f"\nbench-guard: inconclusive: {', '.join(doubtful)} looked worse, but other"
            " processes were using the machine heavily meanwhile. Run it again when"
            " `uptime` shows a load average below 2."
        )
        return 3
    print("\nbench-guard: every figure within tolerance of bench/baseline.json")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
