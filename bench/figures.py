"""The gateway's figures as ratios to (or differences from) the floor's, measured in the
same run: ratios survive this VM's 2-3x drift in speed, absolute numbers do not.

For a cell that has the floor and the gateway:
- `rps`: gateway req/s ÷ floor req/s (higher is better; 1.0 is the floor);
- `cpu`: gateway CPU µs/req ÷ floor CPU µs/req (lower is better);
where the upstream was also measured directly (concurrency 1, the realistic upstream),
latency added over calling the upstream directly, gateway's minus floor's, in ms (lower
is better; 0 is the floor):
- `added_p50`, `added_p99`: the whole response (a stream's end);
- `first_event_p50`, `first_event_p99`: time to the first event of a stream;
- `gap_p99`: the 99th percentile gap between two events of one stream.
"""

from __future__ import annotations

from typing import Any

Rows = dict[tuple[str, str], dict[str, Any]]  # (cell, target) -> best-of row

# the targets (issue 9), checked in every report
TARGETS: list[tuple[str, str, float, str]] = [
    # figure, comparison, bound, what it says
    ("instant-sse-c64.rps", ">=", 0.80, "streaming at c64: at least 80 % of the floor's req/s"),
    ("instant-json-c64.rps", ">=", 0.90, "non-streaming at c64: at least 90 % of the floor's"),
    ("instant-json-c1.added_p50", "<=", 0.15, "p50 added at c1, non-streaming: within 0.15 ms"),
    ("instant-sse-c1.added_p50", "<=", 0.15, "p50 added at c1, streaming: within 0.15 ms"),
    ("realistic-sse-c64.added_p50", "<=", 1.0, "realistic stream, added p50: within 1 ms"),
    ("realistic-sse-c64.added_p99", "<=", 1.0, "realistic stream, added p99: within 1 ms"),
]

_ADDED = {
    "added_p50": "p50_ms",
    "added_p99": "p99_ms",
    "first_event_p50": "first_event_p50_ms",
    "first_event_p99": "first_event_p99_ms",
}


def compute(rows: Rows, cells: list[str], target: str = "gateway") -> dict[str, dict[str, float]]:
    """figure name -> {"gateway", "floor", "value"}; `value` is the ratio or difference.
    `target`: whose figures ("before": another build's gateway, run beside it)."""
    out: dict[str, dict[str, float]] = {}
    for cell in cells:
        gw, floor, direct = (rows.get((cell, t)) for t in (target, "floor", "direct"))
        if gw is None or floor is None:
            continue
        if gw["rps"] and floor["rps"]:
            out[f"{cell}.rps"] = _ratio(gw["rps"], floor["rps"])
        if gw.get("cpu_us_per_req") and floor.get("cpu_us_per_req"):
            out[f"{cell}.cpu"] = _ratio(gw["cpu_us_per_req"], floor["cpu_us_per_req"])
        if direct is None:
            continue
        for figure, key in _ADDED.items():
            if gw.get(key) is None or direct.get(key) is None:
                continue
            added_gw, added_floor = gw[key] - direct[key], floor[key] - direct[key]
            out[f"{cell}.{figure}"] = _difference(added_gw, added_floor)
        if gw.get("gap_p99_ms") is not None:
            out[f"{cell}.gap_p99"] = _difference(gw["gap_p99_ms"], floor["gap_p99_ms"])
    return out


def _ratio(gateway: float, floor: float) -> dict[str, float]:
    return {"gateway": gateway, "floor": floor, "value": round(gateway / floor, 3)}


def _difference(gateway: float, floor: float) -> dict[str, float]:
    return {
        "gateway": round(gateway, 3),
        "floor": round(floor, 3),
        "value": round(gateway - floor, 3),
    }


def describe(name: str, figure: dict[str, float]) -> str:
    """One figure, readably: 'rps 0.82 (1,736 vs 2,117 req/s)'."""
    kind = name.rsplit(".", 1)[1]
    g, f, v = figure["gateway"], figure["floor"], figure["value"]
    if kind == "rps":
        return f"{v:.1%} of the floor's req/s ({g:,.0f} vs {f:,.0f})"
    if kind == "cpu":
        return f"{v:.2f}x the floor's CPU per request ({g:,.0f} vs {f:,.0f} µs)"
    return f"{v:+.2f} ms over the floor's (gateway {g:+.2f} ms, floor {f:+.2f} ms)"


def check_targets(figures: dict[str, dict[str, float]]) -> list[str]:
    lines = []
    for name, op, bound, what in TARGETS:
        if name not in figures:
            continue
        value = figures[name]["value"]
        ok = value >= bound if op == ">=" else value <= bound
        shown = f"{value:.1%}" if name.endswith(".rps") else f"{value:+.2f} ms"
        lines.append(f"  {'met ' if ok else 'MISS'}  {what}: {shown}")
    return lines
