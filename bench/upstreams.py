"""The benchmark's upstreams (one private nginx) and the configs pointing at them.

Two kinds of upstream, each with a JSON and an SSE server block:
- instant: fixed answers at once;
- realistic: 50 ms before the first byte; a stream then sends its 20 chunk events 2 ms
  apart, and the usage chunk with `[DONE]` 2 ms after the last (about 90 ms in all).

nginx can't route on the request body, and the gateway forwards neither client headers
nor a choice of path, so "stream or not" is selected by port: each model (the gateway's
and the floor's) points at its own upstream.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"
NAMES = ("instant-json", "instant-sse", "realistic-json", "realistic-sse")
FIRST_BYTE_S = 0.05  # realistic: time to the first byte
CHUNK_GAP_S = 0.002  # realistic: between two stream events

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
    """One private nginx, four server blocks: {instant,realistic} x {json,sse}."""
    events = sse_events()
    # The whole SSE body is too long for one nginx config token (4 KiB), so it is
    # sent as one `echo` per event.
    sse = "".join(f"echo -n '{e}';\n" for e in events)
    # realistic: each chunk event flushed on its own, 2 ms apart; the usage chunk and
    # [DONE] leave together, as OpenAI sends them
    *chunks, usage, done = events
    steps = f"echo_sleep {CHUNK_GAP_S};\n".join(f"echo -n '{e}'; echo_flush;\n" for e in chunks)
    steps += f"echo_sleep {CHUNK_GAP_S};\necho -n '{usage}'; echo -n '{done}'; echo_flush;\n"
    # echo_read_request_body: read the POST body before answering, as a real upstream
    # does (`return` discards it by itself).
    locs = {
        "instant-json": f"default_type application/json; return 200 '{JSON_BODY}';",
        "instant-sse": f"default_type text/event-stream; echo_read_request_body;\n{sse}",
        "realistic-json": "default_type application/json; echo_read_request_body;\n"
        f"echo_sleep {FIRST_BYTE_S}; echo -n '{JSON_BODY}';",
        "realistic-sse": "default_type text/event-stream; echo_read_request_body;\n"
        f"echo_sleep {FIRST_BYTE_S};\n{steps}",
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


def model_name(upstream: str) -> str:
    """instant-json -> bench-json, realistic-sse -> bench-sse-realistic."""
    kind, fmt = upstream.split("-")
    return f"bench-{fmt}" + ("" if kind == "instant" else f"-{kind}")


def upstream_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1/chat/completions"


# BENCH_GOVERNANCE=1: every governance feature on (a key with rpm, tpm and budgets, in a
# team with the same, a gateway budget, the ledger), none of them ever refusing
GOVERNANCE = os.environ.get("BENCH_GOVERNANCE", "") == "1"
BENCH_KEY = "sb-bench-governance-key"
if GOVERNANCE:  # the load clients (chat.lua, stream_client.py) send it from the environment
    os.environ.setdefault("BENCH_KEY", BENCH_KEY)
_LIMITS = "rpm: 100000000, tpm: 1000000000000, budget_usd: {daily: 100000, monthly: 1000000}"


def governance_conf() -> str:
    digest = hashlib.sha256(BENCH_KEY.encode()).hexdigest()
    return (
        f"auth:\n  teams:\n    - {{name: bench, {_LIMITS}}}\n"
        f"  keys:\n    - {{name: bench, team: bench, key_sha256: {digest}, {_LIMITS}}}\n"
        "governance: {budget_usd: {daily: 100000, monthly: 1000000}}\n"
    )


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
    auth = governance_conf() if GOVERNANCE else "auth: none\n"
    return f"store: {store}\n{auth}providers:\n{providers}models:\n{models}"


def floor_routes(ports: dict[str, int]) -> dict[str, str]:
    """The floor's whole config: each model name to its upstream's URL."""
    return {model_name(name): upstream_url(port) for name, port in ports.items()}
