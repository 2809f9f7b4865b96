"""Capacity: requests/s per worker at 1 and 2 workers (`serve --workers N` pinned to N
cores), and what each costs the shared Redis (commands, bytes, Redis CPU), measured on
the loopback bench's nginx upstream (instant answers) and a redis-server of its own.

`make bench-capacity`; writes bench/results/capacity.json. Reuses bench/run.py's nginx,
wrk and process handling. With 2 cores, 2 workers share a core with nginx and wrk: the
2-worker figure is a floor, and the 1-worker one is the per-core figure to plan with.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import redis

from routing.config import MetricsConfig
from routing.stats import Outcome
from routing.store.fields import Accumulator, oldest_bucket
from routing.store.redis_store import _RECORD_SHA, RECORD_SCRIPT, RedisStore

BENCH = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
assert _spec is not None and _spec.loader is not None
run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)

SECONDS = int(os.environ.get("BENCH_DURATION", "8"))
CONNECTIONS = 64
CORES = {1: "0", 2: "0,1"}


def redis_info(url: str) -> dict[str, float]:
    """The Redis counters that matter here."""
    with redis.Redis.from_url(url, socket_timeout=5) as client:
        info = client.info("all")
    return {
        "commands": float(info["total_commands_processed"]),
        "bytes_in": float(info["total_net_input_bytes"]),
        "bytes_out": float(info["total_net_output_bytes"]),
        "cpu_s": float(info["used_cpu_user"]) + float(info["used_cpu_sys"]),
    }


def measure(tmp: Path, ports: dict[str, int], store: str, workers: int) -> list[dict[str, Any]]:
    port = run.free_port()
    (tmp / "gateway.yaml").write_text(run.gateway_conf(ports, store))
    cmd = ["taskset", "-c", CORES[workers], run.SWITCHBOARD, "serve"]
    cmd += ["--config", f"{tmp}/gateway.yaml", "--port", str(port), "--workers", str(workers)]
    log = tmp / f"gateway-{workers}.log"
    gateway = run.spawn(cmd, log)
    rows = []
    try:
        run.wait_until(lambda: run.healthz(port), "gateway", gateway, log, 90)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        for name, stream in (("instant-json", False), ("instant-sse", True)):
            model = run.model_name(name)
            run.smoke(url, model, stream)
            run.wrk(url, model, stream, CONNECTIONS, 2)  # warm-up
            time.sleep(1)  # let the warm-up's batches reach Redis
            before, cpu_before = redis_info(store), run.cpu_ticks(gateway.pid)
            result = run.wrk(url, model, stream, CONNECTIONS, SECONDS)
            time.sleep(1)  # and this run's
            after, cpu_after = redis_info(store), run.cpu_ticks(gateway.pid)
            seconds = result["duration_us"] / 1e6
            requests = result["requests"]
            delta = {k: after[k] - before[k] for k in before}
            rows.append(
                {
                    "workers": workers,
                    "cores": CORES[workers],
                    "stream": stream,
                    "rps": round(requests / seconds, 1),
                    "rps_per_worker": round(requests / seconds / workers, 1),
                    "gateway_cpu_ms_per_req": round(
                        (cpu_after - cpu_before) / run.TICK * 1000 / requests, 3
                    ),
                    "p99_ms": round(result["p99_us"] / 1000, 2),
                    "errors": result["errors"] + result["non_2xx"],
                    "redis_commands_per_s": round(delta["commands"] / (seconds + 1), 1),
                    "redis_commands_per_req": round(delta["commands"] / requests, 4),
                    "redis_bytes_per_req": round(
                        (delta["bytes_in"] + delta["bytes_out"]) / requests, 1
                    ),
                    "redis_cpu_ms_per_s": round(delta["cpu_s"] * 1000 / (seconds + 1), 2),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    finally:
        run.stop(gateway)
    return rows


def shard_ceiling(store: str) -> dict[str, float]:
    """What one Redis (one core) does per second of the two commands the metrics store
    sends: the record script (one per deployment with news, every flush) and HGETALL
    (two per tracked deployment, every refresh), with a realistic delta, 50 clients,
    16 commands pipelined (as a flush or refresh sends them)."""
    config = MetricsConfig()
    accumulator = Accumulator(config)
    now = time.time()
    for i in range(20):  # a flush's worth of answers, to one deployment
        accumulator.add(
            Outcome(
                deployment="p/m",
                at=now,
                ok=True,
                latency=0.4 + i / 100,
                ttft=0.1,
                completion_tokens=40,
                generation=0.3,
            )
        )
    delta = accumulator.drain()["p/m"]
    redis_store = RedisStore(store, config)
    window, state = redis_store.keys_of("p/m")
    with redis.Redis.from_url(store) as client:
        client.script_load(RECORD_SCRIPT)
        record = [
            "EVALSHA",
            _RECORD_SHA,
            "2",
            window,
            state,
            str(oldest_bucket(now, config)),
            repr(now),
            str(int(config.window * 3000)),
            msgspec.json.encode(delta).decode(),
            "bench-replica",
            "3",
        ]
        client.execute_command(*record)
    port = store.removeprefix("redis://").split("/")[0].split(":")[1]
    rates = {}
    for name, command in (("record_script", record), ("hgetall", ["HGETALL", window])):
        out = subprocess.run(
            [
                "taskset",
                "-c",
                run.LOAD_CPU,
                "redis-benchmark",
                "-p",
                port,
                "-n",
                "200000",
                "-c",
                "50",
                "-P",
                "16",
                "-q",
                *command,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        rates[name] = float(
            out.rsplit(":", 1)[1].split()[0]
        )  # "...: 123456.79 requests per second"
    return rates


def main() -> None:
    load_before = [round(x, 2) for x in os.getloadavg()]
    names = ("instant-json", "instant-sse", "realistic-json", "realistic-sse")
    ports = {name: run.free_port() for name in names}
    with tempfile.TemporaryDirectory(prefix="switchboard-capacity-") as tmp_s:
        tmp = Path(tmp_s)
        try:
            run.start_nginx(tmp, ports)
            store = run.start_redis(tmp)
            rows = measure(tmp, ports, store, 1) + measure(tmp, ports, store, 2)
            ceiling = shard_ceiling(store)
        finally:
            for process in reversed(run.PROCS):
                run.stop(process)
    out = {
        "meta": {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "loadavg_before": load_before,
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "cpus": os.cpu_count(),
            "connections": CONNECTIONS,
            "seconds": SECONDS,
        },
        "rows": rows,
        "redis_shard_commands_per_s": ceiling,
    }
    results = BENCH / "results"
    results.mkdir(exist_ok=True)
    (results / "capacity.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["meta"]))


if __name__ == "__main__":
    main()
