"""Switchboard loopback benchmark (standard library only; started by bench/run.sh).

For two nginx upstreams ("instant" and "realistic": 50 ms, streamed over ~150 ms) it
measures the upstream directly and through the gateway, non-streaming and streaming,
at concurrency 1 and 64, with wrk + bench/chat.lua. Reports req/s, p50/p99 latency
(whole response, including the end of a stream) and the gateway's CPU time per
request, as a table on stdout and as JSON in bench/results/latest.json.

Environment: BENCH_SERVER (passed as `serve --server`), BENCH_WARMUP / BENCH_DURATION
(seconds per cell, default 2 / 8), BENCH_STORE (`memory`, or `redis`: a redis-server of
its own), BENCH_ONLY (words every cell to run must contain), SWITCHBOARD (gateway
executable, default .venv/bin/switchboard).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))  # whole seconds: wrk takes no fractions
DURATION = int(os.environ.get("BENCH_DURATION", "8"))
SERVER = os.environ.get("BENCH_SERVER", "")
# BENCH_STORE=redis: the gateway's metrics store is a redis-server of the bench's own (on
# the load core), to compare with the default memory store
STORE = os.environ.get("BENCH_STORE", "memory")
# e.g. BENCH_ONLY="realistic gateway json" runs only the cells whose name has every word
ONLY = os.environ.get("BENCH_ONLY", "").split()
SWITCHBOARD = os.environ.get("SWITCHBOARD", str(ROOT / ".venv/bin/switchboard"))
CONCURRENCY = (1, 64)
ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"
# The gateway gets core 0 to itself; nginx and wrk share core 1, so the load
# generator never steals CPU from what is measured.
GW_CPU, LOAD_CPU = ("0", "1") if (os.cpu_count() or 1) > 1 else ("0", "0")
TICK = os.sysconf("SC_CLK_TCK")

# --- fixed upstream answers -------------------------------------------------
# (no ' or $ in them: they are pasted into nginx strings, where $ is a variable)
COMMON = {"id": "chatcmpl-bench", "created": 1700000000, "model": "upstream-model"}
USAGE = {"prompt_tokens": 20, "completion_tokens": 19, "total_tokens": 39}
JSON_BODY = json.dumps(
    COMMON
    | {
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {
                    "role": "assistant",
                    "content": "Hello! This is a fixed benchmark answer.",
                },
            }
        ],
        "usage": USAGE,
    }
)


def sse_events() -> list[str]:
    """20 chunk events, then a usage-only chunk (choices: []) and [DONE]."""
    chunk = COMMON | {"object": "chat.completion.chunk"}
    deltas = [{"role": "assistant", "content": ""}]
    deltas += [{"content": f"tok{i} "} for i in range(1, 20)]
    events = [
        json.dumps(
            chunk
            | {"choices": [{"index": 0, "delta": d, "finish_reason": None if i < 19 else "stop"}]}
        )
        for i, d in enumerate(deltas)
    ]
    events += [json.dumps(chunk | {"choices": [], "usage": USAGE}), "[DONE]"]
    return [f"data: {e}\\n\\n" for e in events]  # nginx expands \n in quoted strings


def nginx_conf(tmp: Path, ports: dict[str, int]) -> str:
    """One private nginx, four server blocks: {instant,realistic} x {json,sse}.

    nginx can't route on the request body, and the gateway forwards neither client
    headers nor a choice of path, so "stream or not" is selected by port: each gateway
    model points at its own upstream.
    """
    # The whole SSE body is too long for one nginx config token (4 KiB), so it is
    # sent as one `echo` per event; the realistic stream flushes each ~5 ms apart.
    sse = "".join(f"echo -n '{e}';\n" for e in sse_events())
    steps = "echo_sleep 0.005;\n".join(f"echo -n '{e}'; echo_flush;\n" for e in sse_events())
    # echo_read_request_body: read the POST body before answering, as a real upstream
    # does (`return` discards it by itself).
    locs = {
        "instant-json": f"default_type application/json; return 200 '{JSON_BODY}';",
        "instant-sse": f"default_type text/event-stream; echo_read_request_body;\n{sse}",
        "realistic-json": "default_type application/json; echo_read_request_body;\n"
        f"echo_sleep 0.05; echo -n '{JSON_BODY}';",
        "realistic-sse": "default_type text/event-stream; echo_read_request_body;\n"
        f"echo_sleep 0.05;\n{steps}",
    }
    servers = "".join(
        f"server {{ listen 127.0.0.1:{ports[name]}; location = /v1/chat/completions {{\n"
        f"{body}\n}} }}\n"
        for name, body in locs.items()
    )
    return f"""
load_module {ECHO_MODULE};
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;  # the default (1000) would make wrk/the gateway reconnect
  client_body_temp_path {tmp}/client_body;
  proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
{servers}}}
"""


def gateway_conf(ports: dict[str, int], store: str) -> str:
    providers = "".join(
        f'  {name}: {{kind: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: bench}}\n'
        for name, port in ports.items()
    )
    models = "".join(
        f"  {model_name(name)}: {{deployments: [{{provider: {name}, model: upstream-model, "
        "input_per_mtok: 1.0, output_per_mtok: 2.0}]}\n"
        for name in ports
    )
    return f"store: {store}\nauth: none\nproviders:\n{providers}models:\n{models}"


def model_name(upstream: str) -> str:
    """instant-json -> bench-json, realistic-sse -> bench-sse-realistic."""
    kind, fmt = upstream.split("-")
    return f"bench-{fmt}" + ("" if kind == "instant" else f"-{kind}")


# --- processes --------------------------------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: children get SIGTERM even if this script is SIGKILLed
    _libc.prctl(1, signal.SIGTERM)


PROCS: list[subprocess.Popen[bytes]] = []  # stopped, newest first, when main() ends


def spawn(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
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


def cpu_ticks(pid: int) -> int:
    """utime+stime (+ reaped children's) of pid and all its live descendants, in ticks."""
    stats: dict[int, tuple[int, int]] = {}  # pid -> (ppid, ticks)
    for d in Path("/proc").glob("[0-9]*"):
        try:
            # after the ")" closing comm: state=0 ppid=1 ... utime=11 stime=12 cutime=13 cstime=14
            f = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        stats[int(d.name)] = (int(f[1]), sum(int(x) for x in f[11:15]))
    tree = {pid}
    for _ in range(8):  # generations: enough for any server's worker layout
        tree |= {p for p, (ppid, _) in stats.items() if ppid in tree}
    return sum(stats[p][1] for p in tree if p in stats)


# --- measuring --------------------------------------------------------------
def smoke(url: str, model: str, stream: bool) -> None:
    """One request before loading a target, so a broken setup fails loudly."""
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        body["stream"] = True
    req = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read().decode()
    except OSError as e:
        detail = e.read().decode()[:500] if hasattr(e, "read") else ""
        sys.exit(f"smoke request to {url} ({model}) failed: {e} {detail}")
    want = "[DONE]" if stream else '"chat.completion"'
    if want not in text:
        sys.exit(f"smoke request to {url} ({model}): no {want} in answer:\n{text[:1000]}")


def wrk(url: str, model: str, stream: bool, conns: int, seconds: int) -> dict[str, int]:
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{conns}", f"-d{seconds}s"]
    cmd += ["--timeout", "10s", "-s", str(BENCH / "chat.lua"), url, "--", model]
    if stream:
        cmd.append("stream")
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + 30, preexec_fn=_die_with_parent
    )
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return dict(json.loads(line.split(" ", 1)[1]))
    sys.exit(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")


def cell(url: str, model: str, stream: bool, conns: int, gw_pid: int | None) -> dict[str, Any]:
    if WARMUP:
        wrk(url, model, stream, conns, WARMUP)  # warm-up: open connections, fill pools/caches
    before = cpu_ticks(gw_pid) if gw_pid else 0
    r = wrk(url, model, stream, conns, DURATION)
    cpu_s = (cpu_ticks(gw_pid) - before) / TICK if gw_pid else None
    n = r["requests"]
    return {
        "requests": n,
        "rps": round(n / (r["duration_us"] / 1e6), 1),
        "p50_ms": round(r["p50_us"] / 1000, 2),
        "p99_ms": round(r["p99_us"] / 1000, 2),
        "max_ms": round(r["max_us"] / 1000, 2),
        "gateway_cpu_ms_per_req": round(cpu_s * 1000 / n, 3) if cpu_s is not None and n else None,
        "non_2xx": r["non_2xx"],
        "errors": r["errors"],
    }


def run_cells(
    ports: dict[str, int], gw_port: int, gw: subprocess.Popen[bytes]
) -> list[dict[str, Any]]:
    rows = []
    for upstream in ("instant", "realistic"):
        for leg in ("direct json", "direct sse", "gateway json", "gateway sse"):
            if not all(word in f"{upstream} {leg}" for word in ONLY):
                continue
            target, fmt = leg.split()
            name, stream = f"{upstream}-{fmt}", fmt == "sse"
            port = gw_port if target == "gateway" else ports[name]
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            smoke(url, model_name(name), stream)
            for conns in CONCURRENCY:
                gw_pid = gw.pid if target == "gateway" else None
                row = {"upstream": upstream, "leg": leg, "concurrency": conns}
                row |= cell(url, model_name(name), stream, conns, gw_pid)
                print(f"{upstream:<10} {leg:<13} c={conns:<3} {row['rps']:>9.1f} req/s", flush=True)
                rows.append(row)
    return rows


def report(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'upstream':<10} {'leg':<13} {'conc':>4} {'req/s':>9} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'gw CPU ms/req':>13} {'non-2xx':>7} {'errors':>6}"
    )
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        cpu = r["gateway_cpu_ms_per_req"]
        print(
            f"{r['upstream']:<10} {r['leg']:<13} {r['concurrency']:>4} {r['rps']:>9.1f} "
            f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{'-' if cpu is None else f'{cpu:.3f}':>13} {r['non_2xx']:>7} {r['errors']:>6}"
        )
    print("\nadded p50 over direct, concurrency 1:")
    p50 = {(r["upstream"], r["leg"]): r["p50_ms"] for r in rows if r["concurrency"] == 1}
    for (up, leg), v in p50.items():
        fmt = leg.split()[1]
        if leg.startswith("gateway") and (up, f"direct {fmt}") in p50:
            print(f"  {up:<10} {fmt:<6} {v - p50[(up, f'direct {fmt}')]:+.2f} ms")


def start_nginx(tmp: Path, ports: dict[str, int]) -> subprocess.Popen[bytes]:
    (tmp / "nginx.conf").write_text(nginx_conf(tmp, ports))
    files = ["-p", f"{tmp}", "-e", f"{tmp}/nginx-error.log", "-c", f"{tmp}/nginx.conf"]
    proc = spawn(["taskset", "-c", LOAD_CPU, "nginx", *files], tmp / "nginx.log")
    all_up = lambda: all(port_open(p) for p in ports.values())  # noqa: E731
    wait_until(all_up, "nginx", proc, tmp / "nginx.log", 15)
    return proc


def start_redis(tmp: Path) -> str:
    port = free_port()
    cmd = ["taskset", "-c", LOAD_CPU, "redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    cmd += ["--save", "", "--appendonly", "no", "--dir", str(tmp)]
    proc = spawn(cmd, tmp / "redis.log")
    wait_until(lambda: port_open(port), "redis-server", proc, tmp / "redis.log", 15)
    return f"redis://127.0.0.1:{port}/0"


def start_gateway(
    tmp: Path, ports: dict[str, int], port: int, store: str
) -> subprocess.Popen[bytes]:
    (tmp / "gateway.yaml").write_text(gateway_conf(ports, store))
    cmd = ["taskset", "-c", GW_CPU, SWITCHBOARD, "serve", "--config", f"{tmp}/gateway.yaml"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--server", SERVER] if SERVER else []
    proc = spawn(cmd, tmp / "gateway.log")
    wait_until(lambda: healthz(port), "gateway", proc, tmp / "gateway.log", 60)
    return proc


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))  # so `finally` runs
    load_before = [round(x, 2) for x in os.getloadavg()]
    names = ("instant-json", "instant-sse", "realistic-json", "realistic-sse")
    ports = {name: free_port() for name in names}
    gw_port = free_port()
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as tmp_s:
        tmp = Path(tmp_s)
        try:
            start_nginx(tmp, ports)
            store = start_redis(tmp) if STORE == "redis" else "memory://"
            gw = start_gateway(tmp, ports, gw_port, store)
            banner = (tmp / "gateway.log").read_text().split("\n", 1)[0]
            print(f"{banner}\nload average before: {load_before}", flush=True)
            rows = run_cells(ports, gw_port, gw)
            if gw.poll() is not None:
                sys.exit(f"gateway died:\n{(tmp / 'gateway.log').read_text()[-3000:]}")
        finally:
            for p in reversed(PROCS):
                stop(p)

    report(rows)
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    meta = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "gateway": banner,
        "loadavg_before": load_before,  # the machine may be shared: a high one means noise
        "server": SERVER or "default",
        "store": STORE,
        "warmup_s": WARMUP,
        "duration_s": DURATION,
        "cpus": {"gateway": GW_CPU, "nginx_and_wrk": LOAD_CPU},
        "latency": "whole response, up to the end of a stream (wrk)",
    }
    name = "latest.json" if STORE == "memory" else f"latest-{STORE}.json"
    (results / name).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"\nwritten: {(results / name).relative_to(ROOT)}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # children are already stopped by main's `finally`
        sys.exit(130)
