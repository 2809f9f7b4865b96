"""`switchboard simulate SCENARIO`: run a routing scenario in virtual time (the real
router against scripted deployments, no network, no waiting) and print, per phase, what
routing is judged on; on a terminal, also a chart of where the traffic went over time."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from routing.simulator.scenario import ScenarioError, load_scenario, shipped_scenarios

if TYPE_CHECKING:  # rich and the simulator load only when the command runs
    from rich.table import Table
    from rich.text import Text

    from routing.simulator.report import Report

_BLOCKS = " ▁▂▃▄▅▆▇█"
_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red", "bright_white")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scenario",
        nargs="?",
        help="a scenario file, or the name of a shipped one: " + ", ".join(shipped_scenarios()),
    )
    parser.add_argument(
        "--strategy",
        choices=["cost", "latency", "throughput", "balanced"],
        help="route with this strategy instead of the scenario's",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--list", action="store_true", help="list the shipped scenarios")


def _seconds(value: float | None, requests: int | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f} s" + (f" / {requests}" if requests is not None else "")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _shares(shares: dict[str, float] | None) -> str:
    if not shares:
        return "-"
    return " ".join(f"{name} {share * 100:.0f}%" for name, share in shares.items())


def phase_table(result: Report) -> Table:
    from rich.table import Table

    table = Table(title=f"{result.scenario}: {result.strategy}, {result.replicas} replica(s)")
    for column in (
        "phase",
        "requests",
        "best",
        "best share",
        "react (s / req)",
        "recover",
        "vs cheapest",
        "to failing",
        "errors",
        "p50 / p95 ms",
        "first tries",
    ):
        left = column in ("phase", "best", "first tries")
        table.add_column(column, justify="left" if left else "right", no_wrap=True)
    for phase in result.phases:
        latency = (
            f"{phase.latency_p50_ms:.0f} / {phase.latency_p95_ms:.0f}"
            if phase.latency_p50_ms is not None and phase.latency_p95_ms is not None
            else "-"
        )
        table.add_row(
            f"{phase.name} ({phase.duration:g} s)",
            str(phase.requests),
            phase.best,
            _percent(phase.best_share),
            _seconds(phase.react_s, phase.react_requests),
            _seconds(phase.recover_s),
            f"{phase.overspend * 100:+.1f} %",
            _percent(phase.unhealthy_share),
            str(phase.client_errors),
            latency,
            _shares(phase.burst_shares or phase.shares),
        )
    return table


def share_chart(result: Report) -> Text:
    """One row per deployment: its share of the first tries, slice by slice."""
    from rich.text import Text

    chart = Text()
    width = max(len(name) for name in result.deployments)
    for i, name in enumerate(result.deployments):
        chart.append(f"{name:>{width}} ", style="bold")
        bars = "".join(
            _BLOCKS[round(slice_.get(name, 0.0) * (len(_BLOCKS) - 1))] for slice_ in result.timeline
        )
        chart.append(bars + "\n", style=_COLOURS[i % len(_COLOURS)])
    ruler = [" "] * len(result.timeline)
    labels = [" "] * (len(result.timeline) + 40)
    for phase in result.phases:
        column = min(len(ruler) - 1, int(phase.started / result.slice_s))
        ruler[column] = "|"
        for j, char in enumerate(phase.name):
            labels[column + j] = char
    chart.append(" " * (width + 1) + "".join(ruler) + "\n", style="dim")
    chart.append(" " * (width + 1) + "".join(labels).rstrip() + "\n", style="dim")
    chart.append(
        " " * (width + 1) + f"share of requests tried first, {result.slice_s:.2f} s a column",
        style="dim",
    )
    return chart


def run(args: argparse.Namespace) -> int:
    import msgspec
    from rich.console import Console

    from routing.simulator.report import report
    from routing.simulator.runner import simulate

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # a file or a pipe: no wrapping inside the table
    if args.list or args.scenario is None:
        for name in shipped_scenarios():
            print(f"{name:14} {load_scenario(name).description}")
        return 0 if args.list else 2
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"invalid scenario: {exc}", file=sys.stderr)
        return 1
    started = time.perf_counter()
    result = report(simulate(scenario, args.strategy))
    took = time.perf_counter() - started
    if args.json:
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(result)).decode() + "\n")
        return 0
    if scenario.description:
        console.print(scenario.description, style="dim")
    console.print(phase_table(result))
    if console.is_terminal:
        console.print(share_chart(result))
    console.print(
        f"{result.requests} requests, {result.tries} upstream tries, simulated in {took:.2f} s",
        style="dim",
    )
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    simulate = commands.add_parser(
        "simulate", help="run a routing scenario in virtual time and report how it routed"
    )
    add_arguments(simulate)
    simulate.set_defaults(run=run)
