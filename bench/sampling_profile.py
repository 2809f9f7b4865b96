"""Where the gateway's CPU goes under load: py-spy samples, grouped by what the code does.

Starts the benchmark's stack, loads one cell (wrk, or the streaming client for the
realistic stream) and samples the gateway (or the floor) with py-spy meanwhile. Each
sample is charged to the innermost frame that a rule below recognises, so a category's
share is the CPU spent in that code and what it calls that no more specific rule claims
(msgspec, a C extension, is charged to the Python frame that called it). Shares become
µs per request, and per chunk for streams, with the CPU time measured in the same run.

py-spy is not a project dependency: install it anywhere (`pip install py-spy` in a
scratch venv) and put it on PATH or in PY_SPY.

usage: python bench/sampling_profile.py CELL [--target gateway|floor] [--seconds 20] [--native]
  CELL: instant-sse-c64, instant-json-c64, realistic-sse-c64, ...
Writes bench/results/profile-CELL-TARGET.{txt,svg} (the svg is py-spy's flame graph).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from measure import Cell, Load, measure
from procs import BENCH, ROOT
from stack import running_stack

# (category, regular expression on "function (file:line)" frames), most specific first
RULES: list[tuple[str, str]] = [
    ("metrics", r"gateway/metrics\.py"),
    ("routing record (outcome, health, store)", r"dispatch\.py:\d+\)$.*|routing/(health|store)/?"),
    ("routing_metadata and cost", r"(metadata_for|cost_of|routing/cost\.py|routing/metadata)"),
    ("closing chunk and routing_metadata splice", r"(with_metadata|_closing_chunk)"),
    ("usage and TTFT tracking", r"(_observe |_stream_chunk|wire\.py|usage_estimate)"),
    ("chunk decoding (msgspec)", r"_read_chunk"),
    ("SSE parsing", r"providers/sse\.py"),
    ("SSE framing and write bursts", r"gateway/answers\.py"),
    ("stream pass-through (provider)", r"providers/openai/adapter\.py"),
    ("RoutedStream (deadline, iteration)", r"routing/router\.py"),
    ("planning", r"routing/(plan|scoring|constraints|exploration|resolution)\.py"),
    ("dispatch", r"routing/dispatch\.py"),
    ("request decoding", r"gateway/chat_decoding\.py|chat_types\.py"),
    ("gateway handler, auth, request id", r"gateway/"),
    ("upstream client (aiohttp)", r"aiohttp/|yarl/|multidict/|providers/http_client\.py"),
    ("Litestar streaming (anyio task group)", r"anyio/|litestar/response/streaming"),
    ("Litestar routing and request", r"litestar/"),
    ("HTTP server (uvicorn, httptools)", r"uvicorn/|httptools"),
    ("event loop (uvloop, asyncio)", r"uvloop|asyncio/|selectors"),
]
COMPILED = [(name, re.compile(pattern)) for name, pattern in RULES]


def categorise(stack: str) -> str:
    """A collapsed stack, root first, frames separated by ';'."""
    for frame in reversed(stack.split(";")):
        for name, pattern in COMPILED:
            if pattern.search(frame):
                return name
    return "other"


def py_spy() -> str:
    found = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if not found:
        sys.exit("py-spy not found: pip install py-spy (a scratch venv will do), set PY_SPY")
    return found


def record(pid: int, seconds: int, out: Path, native: bool, fmt: str) -> None:
    cmd = [py_spy(), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "250"]
    cmd += ["--format", fmt, "--output", str(out), "--nonblocking"]
    cmd += ["--native"] if native else []
    subprocess.run(cmd, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("cell")
    parser.add_argument("--target", default="gateway", choices=["gateway", "floor"])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--native", action="store_true", help="also sample C frames")
    args = parser.parse_args()
    upstream, fmt, conc = args.cell.split("-")
    cell = Cell(upstream, fmt, int(conc.lstrip("c")))
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    stem = results / f"profile-{cell.name}-{args.target}"
    executable = os.environ.get("SWITCHBOARD", str(ROOT / ".venv/bin/switchboard"))

    with running_stack(executable, os.environ.get("BENCH_SERVER", ""), "memory") as stack:
        target = stack.targets[args.target]
        assert target.pid is not None
        pid = target.pid
        measure(target, cell, 2, Load(stack.load.nginx_pid))  # warm-up
        raw = stem.with_suffix(".collapsed")
        # the flame graph and the collapsed stacks come from two recordings of the same
        # load, one after the other (py-spy writes one format per recording)
        half = args.seconds // 2
        rows: dict[str, Any] = {}
        loader = threading.Thread(
            target=lambda: rows.update(measure(target, cell, args.seconds + 2, stack.load))
        )
        loader.start()
        record(pid, half, raw, args.native, "raw")
        record(pid, half, stem.with_suffix(".svg"), args.native, "flamegraph")
        loader.join()
    requests, us_per_request = rows["requests"], rows["cpu_us_per_req"]
    samples: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack_text, _, hits = line.rpartition(" ")
        samples[categorise(stack_text)] += int(hits)
    total = sum(samples.values())
    chunks = 21 if cell.stream else 0  # chunk events per stream (20 + usage), [DONE] apart
    lines = [
        f"{cell.name}, {args.target}: {requests} requests, {us_per_request:.0f} µs CPU per "
        f"request, {total} samples" + (f", {chunks} chunks a stream" if chunks else ""),
        f"{'category':<44} {'share':>6} {'µs/req':>7}" + (f" {'µs/chunk':>8}" if chunks else ""),
    ]
    for category, count in samples.most_common():
        share = count / total
        line = f"{category:<44} {share:>6.1%} {share * us_per_request:>7.1f}"
        if chunks:
            line += f" {share * us_per_request / chunks:>8.2f}"
        lines.append(line)
    text = "\n".join(lines)
    print(text)
    stem.with_suffix(".txt").write_text(text + "\n")
    print(f"\nwritten: {stem.relative_to(ROOT)}.txt, .svg (flame graph), .collapsed")


if __name__ == "__main__":
    main()
