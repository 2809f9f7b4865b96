"""Our rendering of a Grafana dashboard's panels (deploy/grafana/*.json) with real data:
every target of every panel is asked of a real Prometheus (`query_range` over the span,
or an instant query where the target says `instant`), and the answers are drawn on
<canvas> with the status page's own chart code (gateway/ui/static/chart.js), laid out on
the dashboard's 24-column grid. It is not Grafana: no Grafana server can be installed
here. The layout, titles, legends, units and queries are the dashboard's; the look is
ours."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.prometheus_server import PrometheusServer

ROOT = Path(__file__).resolve().parent.parent
CHART_JS = ROOT / "gateway" / "ui" / "static" / "chart.js"
# what Grafana would put in place of the variables: "All", a rate window of 4 scrapes
VARIABLES = {"$__rate_interval": "1m", "$model": ".*", "$provider": ".*", "$team": ".*"}
VARIABLES["$key"] = ".*"
ROW_PX = 30  # Grafana's height of one grid unit


def _expr(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def _legend(fmt: str | None, labels: dict[str, str]) -> str:
    if not fmt or fmt == "__auto":
        shown = {k: v for k, v in labels.items() if k not in ("__name__", "job", "instance")}
        return ", ".join(f"{k}={v}" for k, v in shown.items()) or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt).strip()


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row's


def panel_data(
    prometheus: PrometheusServer, panel: dict[str, Any], start: float, end: float, step: float
) -> dict[str, Any]:
    """What one panel shows: its series (range) or values (instant), from Prometheus."""
    series: list[dict[str, Any]] = []
    for target in panel.get("targets", []):
        expr = _expr(target["expr"])
        instant = target.get("instant") or panel["type"] in ("stat", "bargauge")
        if instant:
            for sample in prometheus.query(expr, at=end):
                series.append(
                    {
                        "name": _legend(target.get("legendFormat"), sample["metric"]),
                        "value": float(sample["value"][1]),
                    }
                )
        else:
            for result in prometheus.query_range(expr, start, end, step):
                series.append(
                    {
                        "name": _legend(target.get("legendFormat"), result["metric"]),
                        "points": [[float(t), float(v)] for t, v in result["values"]],
                    }
                )
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    mappings = {}
    for mapping in defaults.get("mappings", []):
        for value, shown in mapping.get("options", {}).items():
            mappings[value] = {"text": shown.get("text", value), "color": shown.get("color")}
    return {
        "type": panel["type"],
        "title": panel.get("title", ""),
        "grid": panel["gridPos"],
        "unit": defaults.get("unit", "short"),
        "max": defaults.get("max"),
        "mappings": mappings,
        "series": series,
    }


def page(
    prometheus: PrometheusServer, board: dict[str, Any], start: float, end: float, step: float
) -> str:
    """The dashboard as one HTML page (self-contained: the data and the code inline)."""
    shown = [panel_data(prometheus, p, start, end, step) for p in panels(board)]
    data = json.dumps({"from": start, "to": end, "panels": shown}).replace("</", "<\\/")
    title = html.escape(board.get("title", "dashboard"))
    note = html.escape(
        "Our rendering of this Grafana dashboard's panels (deploy/grafana), each query "
        "answered by a real Prometheus scraping a gateway under traffic; drawn by "
        "tests/dashboard_render.py, not by Grafana."
    )
    return PAGE.format(
        title=title,
        note=note,
        row_px=ROW_PX,
        chart_js=CHART_JS.read_text(),
        data=data,
    )


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ margin: 0; background: #111217; color: #ccccdc;
  font: 13px system-ui, "Liberation Sans", sans-serif; }}
header {{ padding: 10px 16px; border-bottom: 1px solid #2c2e36; }}
header h1 {{ font-size: 17px; margin: 0 0 3px; color: #fff; }}
header p {{ margin: 0; color: #8e8e9e; font-size: 12px; }}
#grid {{ display: grid; grid-template-columns: repeat(24, 1fr); grid-auto-rows: {row_px}px;
  gap: 8px; padding: 8px 16px 16px; }}
.panel {{ background: #181b1f; border: 1px solid #2c2e36; border-radius: 3px;
  display: flex; flex-direction: column; padding: 6px 8px; min-height: 0; }}
.panel h2 {{ font-size: 13px; margin: 0 0 4px; color: #fff; font-weight: 500; }}
.row {{ font-size: 15px; color: #fff; align-self: end; padding: 0 2px; }}
canvas {{ flex: 1; width: 100%; min-height: 0; }}
.stat {{ flex: 1; display: flex; align-items: center; justify-content: center;
  font-size: 34px; color: #73bf69; font-weight: 500; }}
.legend {{ display: flex; flex-wrap: wrap; gap: 2px 12px; font-size: 11px; max-height: 44px;
  overflow: hidden; }}
.legend i {{ display: inline-block; width: 10px; height: 3px; margin-right: 4px;
  vertical-align: middle; }}
.bars {{ flex: 1; display: flex; flex-direction: column; justify-content: space-around; }}
.bar {{ display: grid; grid-template-columns: 210px 1fr 70px; gap: 8px; align-items: center;
  font-size: 12px; }}
.bar span.track {{ background: #22252b; height: 16px; position: relative; }}
.bar span.fill {{ position: absolute; left: 0; top: 0; bottom: 0; }}
.empty {{ flex: 1; display: flex; align-items: center; justify-content: center; color: #8e8e9e; }}
</style></head>
<body data-drawn="0">
<header><h1>{title}</h1><p>{note}</p></header>
<div id="grid"></div>
<script>{chart_js}</script>
<script>
const DATA = {data};
const COLORS = {{green: "#73bf69", yellow: "#fade2a", orange: "#ff9830", red: "#f2495c"}};
function format(unit, v) {{
  if (!isFinite(v)) return String(v);
  if (unit === "percentunit") return (v * 100).toFixed(1) + " %";
  if (unit === "currencyUSD") return "$" + (Math.abs(v) < 0.01 ? v.toPrecision(2) : v.toFixed(2));
  if (unit === "reqps") return v.toPrecision(3) + " req/s";
  if (unit === "s") return v < 1 ? (v * 1000).toPrecision(3) + " ms" : v.toPrecision(3) + " s";
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3);
}}
const grid = document.getElementById("grid");
let drawn = 0;
for (const p of DATA.panels) {{
  const box = document.createElement("div");
  const g = p.grid;
  box.style.gridColumn = `${{g.x + 1}} / span ${{g.w}}`;
  box.style.gridRow = `${{g.y + 1}} / span ${{g.h}}`;
  if (p.type === "row") {{
    box.className = "row";
    box.textContent = p.title;
    grid.appendChild(box);
    continue;
  }}
  box.className = "panel";
  const h = document.createElement("h2");
  h.textContent = p.title;
  box.appendChild(h);
  grid.appendChild(box);
  if (!p.series.length) {{
    const e = document.createElement("div");
    e.className = "empty";
    e.textContent = "No data";
    box.appendChild(e);
    continue;
  }}
  if (p.type === "stat") {{
    const s = document.createElement("div");
    s.className = "stat";
    s.textContent = format(p.unit, p.series.reduce((a, b) => a + b.value, 0));
    box.appendChild(s);
    drawn++;
    continue;
  }}
  if (p.type === "bargauge") {{
    const bars = document.createElement("div");
    bars.className = "bars";
    for (const one of p.series) {{
      const row = document.createElement("div");
      row.className = "bar";
      const name = document.createElement("span");
      name.textContent = one.name;
      const track = document.createElement("span");
      track.className = "track";
      const fill = document.createElement("span");
      fill.className = "fill";
      const ratio = Math.min(one.value / (p.max || 1), 1);
      fill.style.width = `${{ratio * 100}}%`;
      fill.style.background = ratio >= 1 ? COLORS.red : ratio >= 0.8 ? COLORS.orange : COLORS.green;
      track.appendChild(fill);
      const value = document.createElement("span");
      value.textContent = format(p.unit, one.value);
      row.append(name, track, value);
      bars.appendChild(row);
    }}
    box.appendChild(bars);
    drawn++;
    continue;
  }}
  const canvas = document.createElement("canvas");
  box.appendChild(canvas);
  const legend = document.createElement("div");
  legend.className = "legend";
  box.appendChild(legend);
  const series = p.series.map((one, i) => ({{
    name: one.name,
    points: one.points,
    color: window.SwitchboardChart.color(i),
  }}));
  if (p.type === "state-timeline") {{
    for (const one of series) {{
      const last = one.points.length ? String(one.points[one.points.length - 1][1]) : "";
      const mapped = p.mappings[last];
      one.color = mapped && COLORS[mapped.color] ? COLORS[mapped.color] : one.color;
      one.name += mapped ? `: ${{mapped.text}}` : "";
    }}
  }}
  for (const one of series) {{
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = one.color;
    item.append(swatch, one.name);
    legend.appendChild(item);
  }}
  const count = window.SwitchboardChart.lines(canvas, {{
    from: DATA.from, to: DATA.to, series, format: (v) => format(p.unit, v), dark: true,
  }});
  if (count) drawn++;
}}
document.body.dataset.drawn = String(drawn);
</script>
</body></html>
"""
