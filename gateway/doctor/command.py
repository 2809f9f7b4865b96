"""`switchboard doctor [--config FILE]`: check the config, then the world it names."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the checks pull in httpx, redis and rich: loaded when doctor runs
    from rich.table import Table

    from gateway.doctor.checks import Row

_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="check a config against the real providers and store",
        description="Validate the config, then resolve every provider's host, make one "
        "authenticated call to each (listing its models: no tokens are spent) and reach "
        "the store. Prints a table; exit status 1 when anything failed.",
    )
    doctor.add_argument(
        "--config", help="YAML config; when not given: $SWITCHBOARD_CONFIG, else the demo"
    )
    doctor.set_defaults(run=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    import asyncio

    from rich.console import Console

    from gateway.config import ConfigError
    from gateway.config_cli import config_path, report_problems, report_warnings, validated
    from gateway.doctor.checks import check_all

    path = config_path(args.config)
    try:
        config = validated(path)
    except ConfigError as exc:
        report_problems(path, exc)
        return 1
    report_warnings(path, config)
    rows = asyncio.run(check_all(config))
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # a pipe or a file: do not cut the details
    console.print(_table(rows))
    failed = sum(row.outcome == "fail" for row in rows)
    console.print(f"{path}: {len(rows)} checks, {failed} failed")
    return 1 if failed else 0


def _table(rows: list[Row]) -> Table:
    from rich.table import Table

    table = Table(title="switchboard doctor")
    for column in ("what", "check", "result", "detail"):
        table.add_column(column, overflow="fold")
    for row in rows:
        style = _STYLE[row.outcome]
        table.add_row(row.subject, row.check, f"[{style}]{row.outcome}[/]", row.detail)
    return table
