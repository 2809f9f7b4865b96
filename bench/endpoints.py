"""`make bench-endpoints`: what the gateway adds to each OpenAI endpoint it serves, beside
Chat Completions, on the same upstream (instant nginx answers, gateway pinned to core 0).

For chat, embeddings, legacy completions, the Responses API and the Messages API (each
also streamed but embeddings) it measures the upstream directly and through the gateway,
interleaved in rounds (the best of each kept), and reports the latency the gateway adds
(p50 through it minus p50 direct) and its CPU time per request, each also as a ratio to
chat's: the issue's bar is within 10 %.

Responses and Messages are measured twice: native (the upstream speaks the API: an
OpenAI deployment with a Responses API, an Anthropic one) and translated onto the chat
path (the same OpenAI-compatible upstream chat uses). "Direct" is the upstream called in
the API it serves: `/v1/responses` or `/v1/messages` natively, `/v1/chat/completions`
for a translated request, so "added" is what the gateway adds either way.

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
from typing import Any, NamedTuple

from endpoint_answers import MESSAGE_BODY, RESPONSE_BODY, message_events, response_events
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
CHAT, RESPONSES, MESSAGES = "/v1/chat/completions", "/v1/responses", "/v1/messages"


class Endpoint(NamedTuple):
    kind: str  # the row's name
    path: str  # on the gateway
    upstream: str  # json | sse: which nginx server block answers
    provider: str  # openai (chat-compatible) | responses (native Responses) | anthropic
    direct: str  # the upstream's own path for the same request


ENDPOINTS = [
    Endpoint("chat", CHAT, "json", "openai", CHAT),
    Endpoint("embeddings", "/v1/embeddings", "json", "openai", "/v1/embeddings"),
    Endpoint("completions", "/v1/completions", "json", "openai", "/v1/completions"),
    Endpoint("responses", RESPONSES, "json", "openai", CHAT),
    Endpoint("responses-native", RESPONSES, "json", "responses", RESPONSES),
    Endpoint("messages", MESSAGES, "json", "openai", CHAT),
    Endpoint("messages-native", MESSAGES, "json", "anthropic", MESSAGES),
    Endpoint("chat-stream", CHAT, "sse", "openai", CHAT),
    Endpoint("completions-stream", "/v1/completions", "sse", "openai", "/v1/completions"),
    Endpoint("responses-stream", RESPONSES, "sse", "openai", CHAT),
    Endpoint("responses-native-stream", RESPONSES, "sse", "responses", RESPONSES),
    Endpoint("messages-stream", MESSAGES, "sse", "openai", CHAT),
    Endpoint("messages-native-stream", MESSAGES, "sse", "anthropic", MESSAGES),
]
SYSTEM, PROMPT = "You are a terse assistant.", "Say hello in five words."
CHAT_BODY = {
    "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}],
    "max_tokens": 32,
}
# each API's typical request with the same prompt (the openai SDK asks embeddings in
# base64, its default)
BODIES: dict[str, dict[str, Any]] = {
    CHAT: CHAT_BODY,
    "/v1/embeddings": {
        "input": ["The food was delicious and the waiter was friendly."],
        "encoding_format": "base64",
    },
    "/v1/completions": {"prompt": PROMPT, "max_tokens": 32},
    RESPONSES: {"instructions": SYSTEM, "input": PROMPT, "max_output_tokens": 32},
    MESSAGES: {
        "system": SYSTEM,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 32,
    },
}


def model_of(endpoint: Endpoint) -> str:
    name = f"bench-{endpoint.upstream}"
    return name if endpoint.provider == "openai" else f"{name}-{endpoint.provider}"


def request_body(endpoint: Endpoint, *, direct: bool = False) -> str:
    """The body a client sends the gateway; `direct`: the upstream's own request for it
    (for a translated endpoint, the chat request)."""
    path = endpoint.direct if direct else endpoint.path
    body = dict(BODIES[path])
    if endpoint.upstream == "sse":
        body["stream"] = True
    return json.dumps({"model": "upstream-model" if direct else model_of(endpoint), **body})


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
        RESPONSES: RESPONSE_BODY,
        MESSAGES: MESSAGE_BODY,
    }
    json_server = "".join(
        f"location = {path} {{ default_type application/json; echo_read_request_body;\n"
        f"{_echo(body)}}}\n"
        for path, body in json_locations.items()
    )
    sse_locations = {
        CHAT: sse_events(),
        "/v1/completions": text_events(),
        RESPONSES: response_events(),
        MESSAGES: message_events(),
    }
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
    providers, models = "", ""
    for name, port in ports.items():
        root = f"http://127.0.0.1:{port}"
        providers += (
            f"  {name}: {{kind: openai, base_url: {root}/v1, api_key: bench}}\n"
            f"  {name}-responses: {{kind: openai, base_url: {root}/v1, api_key: bench, "
            "responses_api: true}\n"
            f"  {name}-anthropic: {{kind: anthropic, base_url: {root}, api_key: bench}}\n"
        )
        for provider in (name, f"{name}-responses", f"{name}-anthropic"):
            models += (
                f"  bench-{provider}: {{deployments: [{{provider: {provider}, "
                "model: upstream-model, input_per_mtok: 1.0, output_per_mtok: 2.0}]}\n"
            )
    return f"store: memory://\nauth: none\nproviders:\n{providers}models:\n{models}"


def wrk(url: str, body: str, concurrency: int, seconds: int) -> dict[str, Any]:
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s"]
    cmd += ["-s", str(BENCH / "endpoint.lua"), url, "--", body]
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


def measure(url: str, body: str, concurrency: int, pid: int | None) -> dict[str, float]:
    wrk(url, body, concurrency, WARMUP)
    before = cpu_ticks(pid) if pid else 0
    r = wrk(url, body, concurrency, DURATION)
    spent = (cpu_ticks(pid) - before) if pid else 0
    n = max(r["requests"], 1)
    if r["non_2xx"] or r["errors"]:
        sys.exit(f"{url}: {r['non_2xx']} non-2xx, {r['errors']} errors")
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
            for endpoint in ENDPOINTS:
                upstream = f"http://127.0.0.1:{ports[endpoint.upstream]}"
                for target, url, pid in (
                    ("direct", f"{upstream}{endpoint.direct}", None),
                    ("gateway", f"http://127.0.0.1:{gw_port}{endpoint.path}", gw_pid),
                ):
                    body = request_body(endpoint, direct=target == "direct")
                    row = measure(url, body, concurrency, pid)
                    key = (endpoint.kind, concurrency, target)
                    old = best.get(key)
                    if old is None or row["p50_ms"] < old["p50_ms"]:
                        cpu = min(row["cpu_us"], old["cpu_us"]) if old else row["cpu_us"]
                        best[key] = {**row, "cpu_us": cpu}
                    elif target == "gateway":
                        old["cpu_us"] = min(old["cpu_us"], row["cpu_us"])
    rows = []
    for concurrency in CONCURRENCY:
        for endpoint in ENDPOINTS:
            direct, gateway = (
                best[(endpoint.kind, concurrency, "direct")],
                best[(endpoint.kind, concurrency, "gateway")],
            )
            rows.append(
                {
                    "endpoint": endpoint.kind,
                    "concurrency": concurrency,
                    "added_p50_ms": round(gateway["p50_ms"] - direct["p50_ms"], 3),
                    "gateway_rps": round(gateway["rps"], 1),
                    "cpu_us_per_req": round(gateway["cpu_us"], 1),
                    "baseline": BASELINE[endpoint.upstream],
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
        f"{'endpoint':<24} {'c':>3} {'added p50 ms':>12} {'vs chat':>8} "
        f"{'CPU µs/req':>10} {'vs chat':>8} {'req/s':>8}"
    )
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        print(
            f"{r['endpoint']:<24} {r['concurrency']:>3} {r['added_p50_ms']:>12.3f} "
            f"{r['added_p50_vs_chat']:>8.2f} {r['cpu_us_per_req']:>10.0f} "
            f"{r['cpu_vs_chat']:>8.2f} {r['gateway_rps']:>8.0f}"
        )
    print(
        f"\nload average {os.getloadavg()}; 'vs chat': ratio to chat's (streams: to chat's stream)"
    )


if __name__ == "__main__":
    main()
