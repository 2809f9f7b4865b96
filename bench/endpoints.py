"""`make bench-endpoints`: what the gateway adds to each OpenAI endpoint it serves, beside
Chat Completions, on the same upstream (instant nginx answers, gateway pinned to core 0).

For chat, embeddings and legacy completions (and the two streaming ones) it measures the
upstream directly and through the gateway, interleaved in rounds (the best of each kept),
and reports the latency the gateway adds (p50 through it minus p50 direct) and its CPU
time per request, each also as a ratio to chat's: the issue's bar is within 10 %.

Environment: BENCH_WARMUP / BENCH_DURATION (seconds, default 2 / 5), BENCH_ROUNDS
(default 3), BENCH_CONCURRENCY (default "1 64"), SWITCHBOARD (gateway executable).
"""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from procs import (
    BENCH,
    GW_CPU,
    LOAD_CPU,
    ROOT,
    TICK,
    cpu_ticks,
    die_with_parent,
    free_port,
    healthz,
    pinned,
    port_open,
    spawn,
    stop_all,
    wait_until,
)
from upstreams import ECHO_MODULE, JSON_BODY, sse_events

WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))
DURATION = int(os.environ.get("BENCH_DURATION", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONCURRENCY = [int(c) for c in os.environ.get("BENCH_CONCURRENCY", "1 64").split()]
SWITCHBOARD = os.environ.get("SWITCHBOARD", str(ROOT / ".venv/bin/switchboard"))
# (kind, path, upstream: json | sse)
ENDPOINTS = [
    ("chat", "/v1/chat/completions", "json"),
    ("embeddings", "/v1/embeddings", "json"),
    ("completions", "/v1/completions", "json"),
    ("chat-stream", "/v1/chat/completions", "sse"),
    ("completions-stream", "/v1/completions", "sse"),
]
BASELINE = {"json": "chat", "sse": "chat-stream"}

# --- fixed answers (no ' or $: they are pasted into nginx strings) ---------------------
VECTOR = [((i * 37) % 200 - 100) / 256 for i in range(1536)]  # text-embedding-3-small's size
EMBEDDING_BODY = json.dumps(
    {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": 0,
                "embedding": base64.b64encode(struct.pack("<1536f", *VECTOR)).decode(),
            }
        ],
        "model": "upstream-model",
        "usage": {"prompt_tokens": 12, "total_tokens": 12},
    }
)
TEXT = {"id": "cmpl-bench", "object": "text_completion", "created": 1700000000}
TEXT_BODY = json.dumps(
    TEXT
    | {
        "model": "upstream-model",
        "choices": [
            {"text": "Hello! This is a fixed answer.", "index": 0, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 8, "total_tokens": 15},
    }
)


def text_events() -> list[str]:
    chunk = TEXT | {"model": "upstream-model"}
    events = [
        json.dumps(
            chunk
            | {
                "choices": [
                    {"text": f"tok{i} ", "index": 0, "finish_reason": None if i < 19 else "stop"}
                ]
            }
        )
        for i in range(20)
    ]
    usage = {"prompt_tokens": 7, "completion_tokens": 20, "total_tokens": 27}
    events += [json.dumps(chunk | {"choices": [], "usage": usage}), "[DONE]"]
    return [f"data: {e}\\n\\n" for e in events]


def _echo(body: str) -> str:
    """A body in pieces: one nginx config token holds at most 4 KiB."""
    return "".join(f"echo -n '{body[i : i + 3000]}';\n" for i in range(0, len(body), 3000))


def nginx_conf(tmp: Path, ports: dict[str, int]) -> str:
    json_locations = {
        "/v1/chat/completions": JSON_BODY,
        "/v1/embeddings": EMBEDDING_BODY,
        "/v1/completions": TEXT_BODY,
    }
    json_server = "".join(
        f"location = {path} {{ default_type application/json; echo_read_request_body;\n"
        f"{_echo(body)}}}\n"
        for path, body in json_locations.items()
    )
    sse_locations = {"/v1/chat/completions": sse_events(), "/v1/completions": text_events()}
    sse_server = "".join(
        f"location = {path} {{ default_type text/event-stream; echo_read_request_body;\n"
        + "".join(f"echo -n '{e}';\n" for e in events)
        + "}\n"
        for path, events in sse_locations.items()
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
  keepalive_requests 1000000;
  client_body_temp_path {tmp}/client_body;
  proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  server {{ listen 127.0.0.1:{ports["json"]};
{json_server}  }}
  server {{ listen 127.0.0.1:{ports["sse"]};
{sse_server}  }}
}}
"""


def gateway_conf(ports: dict[str, int]) -> str:
    providers = "".join(
        f'  {name}: {{kind: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: bench}}\n'
        for name, port in ports.items()
    )
    models = "".join(
        f"  bench-{name}: {{deployments: [{{provider: {name}, model: upstream-model, "
        "input_per_mtok: 1.0, output_per_mtok: 2.0}]}\n"
        for name in ports
    )
    return f"store: memory://\nauth: none\nproviders:\n{providers}models:\n{models}"


def wrk(url: str, kind: str, model: str, concurrency: int, seconds: int) -> dict[str, Any]:
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s"]
    cmd += ["-s", str(BENCH / "endpoint.lua"), url, "--", kind, model]
    out = subprocess.run(
        pinned(LOAD_CPU, cmd),
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        preexec_fn=die_with_parent,
    )
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return dict(json.loads(line.split(" ", 1)[1]))
    sys.exit(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")


def measure(url: str, kind: str, model: str, concurrency: int, pid: int | None) -> dict[str, float]:
    wrk(url, kind, model, concurrency, WARMUP)
    before = cpu_ticks(pid) if pid else 0
    r = wrk(url, kind, model, concurrency, DURATION)
    spent = (cpu_ticks(pid) - before) if pid else 0
    n = max(r["requests"], 1)
    if r["non_2xx"] or r["errors"]:
        sys.exit(f"{kind} at {url}: {r['non_2xx']} non-2xx, {r['errors']} errors")
    return {
        "p50_ms": r["p50_us"] / 1000,
        "rps": n / (r["duration_us"] / 1e6),
        "cpu_us": spent / TICK * 1e6 / n,
    }


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-endpoints-"))
    ports = {"json": free_port(), "sse": free_port()}
    gw_port = free_port()
    try:
        (tmp / "nginx.conf").write_text(nginx_conf(tmp, ports))
        files = ["-p", f"{tmp}", "-e", f"{tmp}/nginx-error.log", "-c", f"{tmp}/nginx.conf"]
        nginx = spawn(pinned(LOAD_CPU, ["nginx", *files]), tmp / "nginx.log")
        up = lambda: all(port_open(p) for p in ports.values())  # noqa: E731
        wait_until(up, "nginx", nginx, tmp / "nginx.log", 15)
        (tmp / "gateway.yaml").write_text(gateway_conf(ports))
        cmd = pinned(GW_CPU, [SWITCHBOARD, "serve", "--config", f"{tmp}/gateway.yaml"])
        gateway = spawn([*cmd, "--host", "127.0.0.1", "--port", str(gw_port)], tmp / "gw.log")
        wait_until(lambda: healthz(gw_port), "gateway", gateway, tmp / "gw.log", 60)
        rows = run(ports, gw_port, gateway.pid)
    finally:
        stop_all()
    report(rows)
    out = BENCH / "results" / "endpoints.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"loadavg": os.getloadavg(), "rows": rows}, indent=1))


def run(ports: dict[str, int], gw_port: int, gw_pid: int) -> list[dict[str, Any]]:
    best: dict[tuple[str, int, str], dict[str, float]] = {}
    for _ in range(ROUNDS):
        for concurrency in CONCURRENCY:
            for kind, path, upstream in ENDPOINTS:
                for target, url, pid in (
                    ("direct", f"http://127.0.0.1:{ports[upstream]}{path}", None),
                    ("gateway", f"http://127.0.0.1:{gw_port}{path}", gw_pid),
                ):
                    row = measure(url, kind, f"bench-{upstream}", concurrency, pid)
                    key = (kind, concurrency, target)
                    old = best.get(key)
                    if old is None or row["p50_ms"] < old["p50_ms"]:
                        cpu = min(row["cpu_us"], old["cpu_us"]) if old else row["cpu_us"]
                        best[key] = {**row, "cpu_us": cpu}
                    elif target == "gateway":
                        old["cpu_us"] = min(old["cpu_us"], row["cpu_us"])
    rows = []
    for concurrency in CONCURRENCY:
        for kind, _, upstream in ENDPOINTS:
            direct, gateway = (
                best[(kind, concurrency, "direct")],
                best[(kind, concurrency, "gateway")],
            )
            rows.append(
                {
                    "endpoint": kind,
                    "concurrency": concurrency,
                    "added_p50_ms": round(gateway["p50_ms"] - direct["p50_ms"], 3),
                    "gateway_rps": round(gateway["rps"], 1),
                    "cpu_us_per_req": round(gateway["cpu_us"], 1),
                    "baseline": BASELINE[upstream],
                }
            )
    by_key = {(r["endpoint"], r["concurrency"]): r for r in rows}
    for r in rows:
        base = by_key[(r["baseline"], r["concurrency"])]
        r["added_p50_vs_chat"] = round(r["added_p50_ms"] / base["added_p50_ms"], 3)
        r["cpu_vs_chat"] = round(r["cpu_us_per_req"] / base["cpu_us_per_req"], 3)
    return rows


def report(rows: list[dict[str, Any]]) -> None:
    head = (
        f"{'endpoint':<20} {'c':>3} {'added p50 ms':>12} {'vs chat':>8} "
        f"{'CPU µs/req':>10} {'vs chat':>8} {'req/s':>8}"
    )
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        print(
            f"{r['endpoint']:<20} {r['concurrency']:>3} {r['added_p50_ms']:>12.3f} "
            f"{r['added_p50_vs_chat']:>8.2f} {r['cpu_us_per_req']:>10.0f} "
            f"{r['cpu_vs_chat']:>8.2f} {r['gateway_rps']:>8.0f}"
        )
    print(
        f"\nload average {os.getloadavg()}; 'vs chat': ratio to chat's (streams: to chat's stream)"
    )


if __name__ == "__main__":
    main()
