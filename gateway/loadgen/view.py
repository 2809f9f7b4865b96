"""The tallies drawn with rich: a header line and one row per provider."""

from __future__ import annotations

from rich import box
from rich.console import Group, JustifyMethod, RenderableType
from rich.table import Table
from rich.text import Text

from gateway.loadgen.options import Settings
from gateway.loadgen.tally import ProviderRow, Snapshot

BAR_WIDTH = 10


def share_bar(pct: float, width: int = BAR_WIDTH) -> Text:
    filled = round(pct / 100 * width)
    return Text.assemble(("█" * filled, "green"), ("·" * (width - filled), "dim"), f" {pct:5.1f}%")


def _ms(p50: float | None, p95: float | None) -> str:
    if p50 is None or p95 is None:
        return "-"
    return f"{p50:.0f}/{p95:.0f}"


def _usd(value: float | None, digits: int) -> str:
    return "-" if value is None else f"${value:.{digits}f}"


def _errors(snapshot: Snapshot) -> str:
    return ", ".join(f"{label} ({count})" for label, count in snapshot.errors.items())


def header(snapshot: Snapshot, settings: Settings) -> Text:
    strategy = settings.strategy or (
        f"{snapshot.strategy} (gateway default)" if snapshot.strategy else "gateway default"
    )
    limits = []
    if settings.duration_s is not None:
        limits.append(f"{snapshot.elapsed_s:.1f} s of {settings.duration_s:g} s")
    else:
        limits.append(f"{snapshot.elapsed_s:.1f} s")
    if settings.requests is not None:
        limits.append(f"{snapshot.answered} of {settings.requests} requests")
    errors = _errors(snapshot)
    return Text.assemble(
        (settings.model, "bold"),
        f" · strategy {strategy} · concurrency {settings.concurrency}",
        " · stream" if settings.stream else "",
        f" · {snapshot.recent_rate_per_s:.1f} req/s · {snapshot.succeeded} ok · errors: ",
        (errors, "red") if errors else "none",
        f" · {', '.join(limits)}",
    )


def provider_table(snapshot: Snapshot, notes: dict[str, str] | None = None) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    columns: list[tuple[str, JustifyMethod]] = [
        ("provider", "left"),
        ("served", "right"),
        ("share", "right"),
        ("share, last\nfew seconds", "left"),
        ("failed\ntries", "right"),
        ("p50/p95 ms\nlast 10 s", "right"),
        ("p50/p95 ms\nall", "right"),
        ("mean\n$/req", "right"),
        ("total $", "right"),
    ]
    for title, justify in columns:
        table.add_column(title, justify=justify, no_wrap=True)
    if notes:
        table.add_column("gateway\nscoreboard", style="dim", no_wrap=True)
    for row in snapshot.rows:
        table.add_row(*_cells(row), *([notes.get(row.provider, "")] if notes else []))
    return table


def _cells(row: ProviderRow) -> list[str | Text]:
    return [
        Text(row.provider, style="bold"),
        str(row.served),
        f"{row.share_pct:.1f}%",
        share_bar(row.recent_share_pct),
        str(row.failed_attempts),
        _ms(row.recent_p50_ms, row.recent_p95_ms),
        _ms(row.p50_ms, row.p95_ms),
        _usd(row.mean_cost_usd, 7),
        _usd(row.total_cost_usd, 5),
    ]


def live_view(snapshot: Snapshot, settings: Settings, notes: dict[str, str]) -> RenderableType:
    return Group(header(snapshot, settings), provider_table(snapshot, notes))


def summary(snapshot: Snapshot, settings: Settings) -> RenderableType:
    errors = _errors(snapshot)
    totals = Text(
        f"{snapshot.answered} requests in {snapshot.elapsed_s:.1f} s "
        f"({snapshot.rate_per_s:.1f} req/s): {snapshot.succeeded} ok, "
        f"errors: {errors or 'none'}; total cost ${snapshot.total_cost_usd:.5f}"
    )
    title = Text(f"switchboard loadgen: {settings.model} via {settings.url}", style="bold")
    return Group(title, provider_table(snapshot), totals)
