"""`switchboard loadgen`: registered here, loaded only when run (rich and the client are
not needed by the other commands)."""

from __future__ import annotations

import argparse

from gateway.loadgen.options import add_arguments


def _run(args: argparse.Namespace) -> int:
    from gateway.loadgen.command import run

    return run(args)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    loadgen = commands.add_parser(
        "loadgen", help="send demo traffic to a gateway and watch where it is routed"
    )
    add_arguments(loadgen)
    loadgen.set_defaults(run=_run)
