"""Switchboard's Grafana dashboards, as code: built with Grafana's Foundation SDK, whose
models are generated from Grafana's own dashboard schema, and written to the JSON files
next to this one (import those into Grafana, or provision them).

    .venv/bin/python deploy/grafana/dashboards.py     # after changing a panel

`tests/test_dashboards_prometheus.py` checks that the JSON files are what this builds,
that they read back through the SDK's models unchanged, and that every query of every
panel returns data from a real Prometheus scraping a gateway under traffic.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge, common, prometheus, stat, statetimeline
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import timeseries as ts
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.variants import Dataquery
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

HERE = Path(__file__).resolve().parent
Query = Builder[Dataquery]
PanelBuilder = Builder[dm.Panel]
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
# filters every request panel honours; "All" matches the empty label too (no deployment)
REQUESTS = 'model=~"$model", provider=~"$provider"'
SPEND = 'team=~"$team", key=~"$key"'
RATE = "$__rate_interval"
WIDTH = 24  # Grafana's grid


class Grid:
    """Places panels left to right, wrapping at the grid's width."""

    def __init__(self) -> None:
        self.x = self.y = self.row_height = 0

    def row(self) -> dm.GridPos:
        self.newline()
        position = dm.GridPos(h=1, w=WIDTH, x=0, y=self.y)
        self.y += 1
        return position

    def place(self, w: int, h: int) -> dm.GridPos:
        if self.x + w > WIDTH:
            self.newline()
        position = dm.GridPos(h=h, w=w, x=self.x, y=self.y)
        self.x += w
        self.row_height = max(self.row_height, h)
        return position

    def newline(self) -> None:
        self.y += self.row_height
        self.x = self.row_height = 0


def query(expr: str, legend: str = "", ref: str = "A", *, instant: bool = False) -> Query:
    target = prometheus.Dataquery().expr(expr).ref_id(ref).legend_format(legend or "__auto")
    return target.instant() if instant else target.range()


def queries(*pairs: tuple[str, str]) -> list[Query]:
    return [query(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(pairs)]


def legend_table() -> common.VizLegendOptions:
    return (
        common.VizLegendOptions()
        .display_mode(cm.LegendDisplayMode.TABLE)
        .placement(cm.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(["mean", "max", "lastNotNull"])
    )


def series(
    grid: Grid,
    title: str,
    description: str,
    targets: Sequence[Query],
    unit: str,
    *,
    w: int = 12,
    h: int = 8,
    stacked: cm.StackingMode | None = None,
    bars_every: str | None = None,
) -> ts.Panel:
    panel = (
        ts.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .grid_pos(grid.place(w, h))
        .targets(list(targets))
        .unit(unit)
        .legend(legend_table())
        .fill_opacity(10)
        .line_width(1)
    )
    if stacked is not None:
        panel = panel.stacking(common.StackingConfig().mode(stacked)).fill_opacity(60)
    if bars_every is not None:
        # one bar per period: Grafana steps the query by the panel's minimum interval
        panel = panel.interval(bars_every).draw_style(cm.GraphDrawStyle.BARS).fill_opacity(80)
    return panel


def single(
    grid: Grid, title: str, description: str, expr: str, unit: str, *, w: int = 6
) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .grid_pos(grid.place(w, 4))
        .targets([query(expr)])
        .unit(unit)
        .graph_mode(cm.BigValueGraphMode.AREA)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]))
    )


def label_filter(name: str, metric: str, label: str) -> dash.QueryVariable:
    return (
        dash.QueryVariable(name)
        .label(label.capitalize())
        .datasource(DATASOURCE)
        .query(f"label_values({metric}, {label})")
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dm.VariableOption(selected=True, text="All", value="$__all"))
    )


def datasource_variable() -> dash.DatasourceVariable:
    return dash.DatasourceVariable("datasource").label("Data source").type("prometheus")


def base(uid: str, title: str, description: str) -> dash.Dashboard:
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["switchboard", "llm-gateway"])
        .editable()
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("browser")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .link(
            dash.DashboardLink("Switchboard")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags(["switchboard"])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
        .with_variable(datasource_variable())
    )


def quantiles(metric: str, by: str, filters: str = REQUESTS) -> list[Query]:
    return queries(
        *(
            (
                f"histogram_quantile({q}, sum by ({by}, le) "
                f"(rate({metric}_bucket{{{filters}}}[{RATE}])))",
                f"{{{{{by}}}}} p{round(q * 100)}",
            )
            for q in (0.5, 0.95, 0.99)
        )
    )


# the health gauges as one number per deployment, for a state timeline
HEALTH_CODE = " + ".join(
    f"{weight} * max by (model, provider) "
    f'(switchboard_deployment_health{{state="{state}", {REQUESTS}}})'
    for weight, state in ((1, "rate_limited"), (2, "half_open"), (3, "circuit_open"))
)
HEALTH_MAPPINGS: list[dm.ValueMapping] = [
    dm.ValueMap(
        options={
            str(code): dm.ValueMappingResult(text=text, color=color, index=code)
            for code, text, color in (
                (0, "healthy", "green"),
                (1, "rate limited", "yellow"),
                (2, "half open (probing)", "orange"),
                (3, "circuit open", "red"),
            )
        }
    )
]


def overview() -> dash.Dashboard:
    grid = Grid()
    board = (
        base(
            "switchboard-overview",
            "Switchboard / Overview",
            "Traffic, errors, latency and TTFT per provider, where routing sends requests, "
            "retries and fallbacks, deployment health and the stores.",
        )
        .with_variable(label_filter("model", "switchboard_requests_total", "model"))
        .with_variable(label_filter("provider", "switchboard_requests_total", "provider"))
    )
    all_requests = f"rate(switchboard_requests_total{{{REQUESTS}}}[{RATE}])"
    errors = f'rate(switchboard_requests_total{{outcome="error", {REQUESTS}}}[{RATE}])'
    board = board.with_row(dash.Row("Traffic").grid_pos(grid.row()))
    panels: list[PanelBuilder] = [
        single(
            grid,
            "Requests / s",
            "API requests answered per second, all outcomes.",
            f"sum({all_requests})",
            "reqps",
        ),
        single(
            grid,
            "Error rate",
            "Share of API requests answered with an error.",
            f"sum({errors}) / sum({all_requests})",
            "percentunit",
        ),
        single(
            grid,
            "In flight",
            "HTTP requests being served now, streams included, all replicas.",
            "sum(switchboard_http_requests_in_flight)",
            "short",
        ),
        single(
            grid,
            "Spend, last 24 h",
            "USD charged for served requests over the last 24 hours.",
            f"sum(increase(switchboard_cost_usd_total{{{REQUESTS}}}[24h]))",
            "currencyUSD",
        ),
        series(
            grid,
            "Requests / s by provider",
            "Answered requests per second by the provider that served them (on error: the "
            "last one tried; empty: none was).",
            [query(f"sum by (provider, outcome) ({all_requests})", "{{provider}} {{outcome}}")],
            "reqps",
        ),
        series(
            grid,
            "Error rate by provider",
            "Share of each provider's requests answered with an error.",
            [
                query(
                    f"sum by (provider) ({errors}) / sum by (provider) ({all_requests})",
                    "{{provider}}",
                )
            ],
            "percentunit",
        ),
        series(
            grid,
            "Errors by code",
            "Error answers per second on every endpoint, by status and code.",
            [
                query(
                    f"sum by (status, code) (rate(switchboard_errors_total[{RATE}]))",
                    "{{status}} {{code}}",
                )
            ],
            "reqps",
            w=24,
        ),
    ]
    for panel in panels:
        board = board.with_panel(panel)

    board = board.with_row(dash.Row("Latency").grid_pos(grid.row()))
    panels = [
        series(
            grid,
            "Request duration by provider",
            "What clients waited, from arrival to the last byte, failed tries and "
            "fallbacks included: p50, p95, p99.",
            quantiles("switchboard_request_duration_seconds", "provider"),
            "s",
        ),
        series(
            grid,
            "Time to first token by provider",
            "Streams: time to the first output token, p50, p95, p99.",
            quantiles("switchboard_ttft_seconds", "provider"),
            "s",
        ),
        series(
            grid,
            "Upstream latency by deployment (p95)",
            "The serving try alone, from its start to its last byte.",
            [
                query(
                    "histogram_quantile(0.95, sum by (model, provider, le) "
                    f"(rate(switchboard_upstream_latency_seconds_bucket{{{REQUESTS}}}[{RATE}])))",
                    "{{model}} @ {{provider}}",
                )
            ],
            "s",
        ),
        series(
            grid,
            "Output tokens / s by deployment (median)",
            "Generation speed of served requests.",
            [
                query(
                    "histogram_quantile(0.5, sum by (model, provider, le) "
                    f"(rate(switchboard_tokens_per_second_bucket{{{REQUESTS}}}[{RATE}])))",
                    "{{model}} @ {{provider}}",
                )
            ],
            "short",
        ),
    ]
    for panel in panels:
        board = board.with_panel(panel)

    board = board.with_row(dash.Row("Routing").grid_pos(grid.row()))
    served = f'rate(switchboard_requests_total{{outcome="success", {REQUESTS}}}[{RATE}])'
    panels = [
        series(
            grid,
            "Traffic share per deployment",
            "For each model, the share of its answered requests each deployment served: "
            "where routing sends traffic over time.",
            [
                query(
                    f"sum by (model, provider) ({served}) "
                    f"/ on (model) group_left sum by (model) ({served})",
                    "{{model}} @ {{provider}}",
                )
            ],
            "percentunit",
            stacked=cm.StackingMode.NORMAL,
        ),
        series(
            grid,
            "Fallbacks and retries / s",
            "Requests moved on from a deployment after it failed (fallback), and tries "
            "made again on the same deployment (retry).",
            queries(
                (
                    f"sum by (provider) (rate(switchboard_fallbacks_total{{{REQUESTS}}}[{RATE}]))",
                    "fallback from {{provider}}",
                ),
                (
                    f"sum by (provider) (rate(switchboard_retries_total{{{REQUESTS}}}[{RATE}]))",
                    "retry on {{provider}}",
                ),
            ),
            "reqps",
        ),
        series(
            grid,
            "Failed upstream tries by class",
            "Failed tries per second, by provider and failure class (the log line of each "
            "says why: switchboard.upstream).",
            [
                query(
                    "sum by (provider, error) "
                    f"(rate(switchboard_upstream_attempts_failed_total{{{REQUESTS}}}[{RATE}]))",
                    "{{provider}} {{error}}",
                )
            ],
            "reqps",
        ),
        series(
            grid,
            "Healthy deployments per model",
            "Deployments routing would send a request to now. At 0 the model's requests "
            "fail with no_healthy_deployment.",
            [
                query(
                    "sum by (model) (max by (model, provider, provider_model_id) "
                    f"(switchboard_deployment_healthy{{{REQUESTS}}}))",
                    "{{model}}",
                )
            ],
            "short",
        ),
        statetimeline.Panel()
        .title("Circuit and health state per deployment")
        .description(
            "healthy; rate limited (cooling down after a 429); circuit open (failing, "
            "skipped until its cooldown ends); half open (one probe request decides)."
        )
        .datasource(DATASOURCE)
        .grid_pos(grid.place(24, 8))
        .targets([query(HEALTH_CODE, "{{model}} @ {{provider}}")])
        .mappings(HEALTH_MAPPINGS)
        .show_value(cm.VisibilityMode.NEVER),
        series(
            grid,
            "Error rate per deployment (routing's window)",
            "Failed tries ÷ tries in routing's sliding window, all replicas: what scoring "
            "and the circuit breaker see.",
            [
                query(
                    f"max by (model, provider) (switchboard_deployment_error_rate{{{REQUESTS}}})",
                    "{{model}} @ {{provider}}",
                )
            ],
            "percentunit",
        ),
        series(
            grid,
            "Upstream requests in flight per deployment",
            "Requests open at each deployment, all replicas.",
            [
                query(
                    f"max by (model, provider) (switchboard_deployment_in_flight{{{REQUESTS}}})",
                    "{{model}} @ {{provider}}",
                )
            ],
            "short",
        ),
    ]
    for panel in panels:
        board = board.with_panel(panel)

    board = board.with_row(dash.Row("Stores").grid_pos(grid.row()))
    panels = [
        series(
            grid,
            "Store degraded",
            "1 while a replica cannot reach a shared store: routing then runs on its own "
            "statistics, governance limits on that replica alone.",
            [
                query(
                    "max by (instance, store) (switchboard_store_degraded)",
                    "{{instance}} {{store}}",
                )
            ],
            "short",
        ),
        series(
            grid,
            "Statistics snapshot age",
            "Age of the snapshot routing reads; it should stay below routing.metrics.refresh "
            "plus a little.",
            [
                query(
                    "max by (instance) (switchboard_store_snapshot_age_seconds)",
                    "{{instance}}",
                )
            ],
            "s",
        ),
    ]
    for panel in panels:
        board = board.with_panel(panel)
    return board


def spend() -> dash.Dashboard:
    grid = Grid()
    board = (
        base(
            "switchboard-spend",
            "Switchboard / Spend and budgets",
            "What requests cost per hour and per day by team, key, model and provider; "
            "budgets and their use; requests refused by limits.",
        )
        .with_variable(label_filter("team", "switchboard_cost_usd_total", "team"))
        .with_variable(label_filter("key", "switchboard_cost_usd_total", "key"))
    )
    cost = f"switchboard_cost_usd_total{{{SPEND}}}"
    board = board.with_row(dash.Row("Spend").grid_pos(grid.row()))
    panels: list[PanelBuilder] = [
        single(
            grid,
            "Spend, last hour",
            "USD charged over the last hour.",
            f"sum(increase({cost}[1h]))",
            "currencyUSD",
            w=8,
        ),
        single(
            grid,
            "Spend, last 24 h",
            "USD charged over the last 24 hours.",
            f"sum(increase({cost}[24h]))",
            "currencyUSD",
            w=8,
        ),
        single(
            grid,
            "Tokens, last hour",
            "Prompt and completion tokens of served requests over the last hour.",
            f"sum(increase(switchboard_tokens_total{{{SPEND}}}[1h]))",
            "short",
            w=8,
        ),
    ]
    for panel in panels:
        board = board.with_panel(panel)
    for period, window in (("hour", "1h"), ("day", "1d")):
        board = board.with_row(dash.Row(f"Cost per {period}").grid_pos(grid.row()))
        for by in ("team", "key", "model", "provider"):
            board = board.with_panel(
                series(
                    grid,
                    f"Cost per {period} by {by}",
                    f"USD per {period}, by {by} (an empty {by}: none, e.g. `auth: none`).",
                    [query(f"sum by ({by}) (increase({cost}[{window}]))", f"{{{{{by}}}}}")],
                    "currencyUSD",
                    stacked=cm.StackingMode.NORMAL,
                    bars_every=window,
                )
            )

    board = board.with_row(dash.Row("Budgets and limits").grid_pos(grid.row()))
    scope = "scope, name, period"
    use = (
        f"max by ({scope}) (switchboard_budget_spent_usd) "
        f"/ (max by ({scope}) (switchboard_budget_limit_usd) > 0)"
    )
    panels = [
        bargauge.Panel()
        .title("Budget use")
        .description(
            "Settled spend ÷ budget in the current UTC day or month, per key, team and the "
            "gateway. Requests the budget cannot cover are refused with 429 budget_exceeded."
        )
        .datasource(DATASOURCE)
        .grid_pos(grid.place(12, 8))
        .targets([query(use, "{{scope}} {{name}} ({{period}})", instant=True)])
        .unit("percentunit")
        .min(0)
        .max(1)
        .thresholds(
            dash.ThresholdsConfig()
            .mode(dm.ThresholdsMode.ABSOLUTE)
            .steps(
                [
                    dm.Threshold(value=None, color="green"),
                    dm.Threshold(value=0.8, color="orange"),
                    dm.Threshold(value=1.0, color="red"),
                ]
            )
        )
        .display_mode(cm.BarGaugeDisplayMode.GRADIENT)
        .orientation(cm.VizOrientation.HORIZONTAL),
        series(
            grid,
            "Budget remaining",
            "What each budget still admits: limit less settled spend and reservations.",
            [
                query(
                    f"max by ({scope}) (switchboard_budget_remaining_usd)",
                    "{{scope}} {{name}} ({{period}})",
                )
            ],
            "currencyUSD",
        ),
        series(
            grid,
            "Requests refused by limits / s",
            "429s from rate limits (limit=rate: rpm, tpm) and budgets (limit=budget), by key.",
            [
                query(
                    "sum by (limit, key, team) "
                    f"(rate(switchboard_limit_rejections_total{{{SPEND}}}[{RATE}]))",
                    "{{limit}} {{key}} {{team}}",
                )
            ],
            "reqps",
            w=24,
        ),
    ]
    for panel in panels:
        board = board.with_panel(panel)
    return board


DASHBOARDS = {"switchboard-overview.json": overview, "switchboard-spend.json": spend}


def render(builder: dash.Dashboard) -> str:
    board = builder.build()
    for number, panel in enumerate(board.panels or [], 1):
        panel.id_val = number  # unique within the dashboard, as Grafana wants
    return JSONEncoder(sort_keys=True, indent=2).encode(board) + "\n"


def main() -> int:
    for name, make in DASHBOARDS.items():
        (HERE / name).write_text(render(make()))
        print(f"wrote {HERE / name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
