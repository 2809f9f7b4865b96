"""`make bench-instructions`: CPU instructions per request, the floor's and the gateway's
(and another build's), counted by callgrind: the A/B that a loaded machine cannot spoil.

Wall-clock CPU time on the shared dev VM swings by 2-3x with the neighbours' load;
instruction counts do not. Each target (the floor, this checkout's gateway, and with
`--before PATH` another build's `switchboard`) runs under `valgrind --tool=callgrind`
behind the benchmark's nginx upstreams. For each cell a client sends warm-up requests,
zeroes the target's counters (`callgrind_control --zero PID`, always with its pid),
sends N requests one after the other on one keep-alive connection, and has callgrind
dump: the dump's total over N is the instructions per request (the batched off-path
writes included). Under callgrind a request lasts ~50x longer, so the work the
target's timers do anyway (the store's flushes, ~5 times a second) would be charged to
requests by how slow the machine is: each round first counts the target idle for 5 s,
and that rate times a measurement's duration is taken out. Rounds interleave the
targets; the median is kept.

Under callgrind a process runs ~50x slower, so the realistic stream's 2 ms gaps still
let each chunk arrive in a read of its own, as on the real machine: that cell counts
the per-read cost, the instant one the per-request cost with a stream in one read.

usage: python bench/instructions.py [--cells instant-sse,realistic-sse,instant-json]
           [--requests 100] [--rounds 3] [--before PATH/TO/switchboard] [--no-floor]
Writes bench/results/instructions.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from procs import BENCH, PYTHON, ROOT, free_port, healthz, port_open, spawn, stop_all, wait_until
from upstreams import NAMES, floor_routes, gateway_conf, model_name, nginx_conf

WARMUP = 20
IDLE_SECONDS = 5.0
BODY = (
    '{"model": "%s", "messages": ['
    '{"role": "system", "content": "You are a terse assistant."}, '
    '{"role": "user", "content": "Say hello in five words."}], '
    '"max_tokens": 32, "stream": %s}'
)
CHUNKS = 21  # chunk events in a stream of the bench's upstreams (20 + usage)


def valgrind(tmp: Path, name: str) -> list[str]:
    return [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",  # starting up uninstrumented is ~10x faster
        f"--callgrind-out-file={tmp}/{name}.callgrind.%p",
    ]


def control(pid: int, *args: str) -> None:
    # always with the pid: without one, callgrind_control acts on every callgrind
    # process on the machine, other people's measurements included
    assert pid > 0
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def instructions(tmp: Path, name: str, pid: int, label: str) -> int:
    """Dump the counters since the last zeroing and read the dump's total."""
    before = set(tmp.glob(f"{name}.callgrind.*"))
    control(pid, f"--dump={label}")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for path in set(tmp.glob(f"{name}.callgrind.*")) - before:
            for line in path.read_text(errors="replace").splitlines():
                if line.startswith(("summary:", "totals:")):
                    return int(line.split()[1])
        time.sleep(0.2)  # written by the target process, not by us
    sys.exit(f"no callgrind dump from {name} for {label}")


def send(conn: http.client.HTTPConnection, cell: str) -> None:
    stream = cell.endswith("-sse")
    body = BODY % (model_name(cell), "true" if stream else "false")
    conn.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
    answer = conn.getresponse()
    data = answer.read()
    if answer.status != 200 or (stream and not data.endswith(b"data: [DONE]\n\n")):
        sys.exit(f"{cell}: {answer.status} {data[-300:]!r}")


def idle_rate(tmp: Path, name: str, pid: int, label: str) -> float:
    """Instructions a second the target runs with no request (its timers: the store's
    flushes, batched writes), to take out of a measurement that lasted that long."""
    control(pid, "--zero")
    started = time.monotonic()
    time.sleep(IDLE_SECONDS)
    return instructions(tmp, name, pid, label) / (time.monotonic() - started)


def measure(
    tmp: Path, name: str, pid: int, port: int, cell: str, n: int, label: str, idle: float
) -> float:
    """Instructions per request, less what the target's timers ran meanwhile: under
    callgrind a request lasts ~50x longer, and its timers' work would be charged to it."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    try:
        for _ in range(WARMUP):
            send(conn, cell)
        control(pid, "--zero")
        started = time.monotonic()
        for _ in range(n):
            send(conn, cell)
        total = instructions(tmp, name, pid, label)
        return (total - idle * (time.monotonic() - started)) / n
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cells", default="instant-sse,realistic-sse,instant-json")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", default="", help="another build's switchboard")
    parser.add_argument("--no-floor", action="store_true")
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed: apt-get install valgrind")
    cells = args.cells.split(",")
    tmp = Path(tempfile.mkdtemp(prefix="switchboard-instructions-"))
    ports = {name: free_port() for name in NAMES}
    targets: dict[str, tuple[int, int]] = {}  # name -> (pid, port)
    counts: dict[str, dict[str, list[float]]] = {}
    try:
        (tmp / "nginx.conf").write_text(nginx_conf(tmp, ports))
        files = ["-p", f"{tmp}", "-e", f"{tmp}/nginx-error.log", "-c", f"{tmp}/nginx.conf"]
        nginx = spawn(["nginx", *files], tmp / "nginx.log")
        wait_until(
            lambda: all(port_open(p) for p in ports.values()), "nginx", nginx, tmp / "nginx.log", 15
        )
        (tmp / "gateway.yaml").write_text(gateway_conf(ports, "memory://"))
        commands = {}
        if not args.no_floor:
            routes = json.dumps(floor_routes(ports))
            commands["floor"] = lambda port: [PYTHON, str(BENCH / "floor.py"), str(port), routes]
        builds = {"gateway": str(ROOT / ".venv/bin/switchboard")}
        if args.before:
            builds["before"] = args.before
        for name, executable in builds.items():
            commands[name] = lambda port, exe=executable: [  # type: ignore[misc]
                exe, "serve", "--config", f"{tmp}/gateway.yaml", "--host", "127.0.0.1",
                "--port", str(port),
            ]  # fmt: skip
        for name, command in commands.items():
            port = free_port()
            proc = spawn([*valgrind(tmp, name), *command(port)], tmp / f"{name}.log")
            ready = (lambda p: lambda: port_open(p))(port)
            if name != "floor":
                ready = (lambda p: lambda: healthz(p))(port)
            wait_until(ready, f"{name} under callgrind", proc, tmp / f"{name}.log", 900)
            control(proc.pid, "--instr=on")
            targets[name] = (proc.pid, port)
            counts[name] = {cell: [] for cell in cells}
        for round_ in range(args.rounds):
            idle = {
                name: idle_rate(tmp, name, pid, f"idle-{round_}")
                for name, (pid, _) in targets.items()
            }
            print(
                f"round {round_ + 1} idle: "
                + ", ".join(f"{name} {rate / 1e3:.0f} k instr/s" for name, rate in idle.items())
            )
            for cell in cells:
                for name, (pid, port) in targets.items():
                    label = f"{cell}-{round_}"
                    value = measure(tmp, name, pid, port, cell, args.requests, label, idle[name])
                    counts[name][cell].append(value)
                    print(f"round {round_ + 1} {cell:<14} {name:<8} {value / 1e6:8.3f} M instr/req")
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    report(cells, counts)


def report(cells: list[str], counts: dict[str, dict[str, list[float]]]) -> None:
    rows = []
    print(f"\n{'cell':<14} {'target':<8} {'M instr/req':>11} {'x floor':>8} {'per chunk':>10}")
    for cell in cells:
        floor = statistics.median(counts["floor"][cell]) if "floor" in counts else None
        for name, by_cell in counts.items():
            median = statistics.median(by_cell[cell])
            ratio = median / floor if floor else None
            chunk = median / CHUNKS if cell.endswith("-sse") else None
            rows.append(
                {"cell": cell, "target": name, "instructions": round(median), "x_floor": ratio}
            )
            print(
                f"{cell:<14} {name:<8} {median / 1e6:>11.3f} "
                f"{f'{ratio:.2f}' if ratio else '-':>8} "
                f"{f'{chunk / 1e3:.1f} k' if chunk else '-':>10}"
            )
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    (results / "instructions.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"\nwritten: {(results / 'instructions.json').relative_to(ROOT)}")


if __name__ == "__main__":
    main()
