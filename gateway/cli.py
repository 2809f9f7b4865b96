"""The `switchboard` command: one subcommand per module, registered here.

A command group lives in its own module, which offers `register(commands)`: it adds its
parser to `commands` and sets `run` (a function of the parsed arguments that returns the
exit status). To add one, write the module and add it to `COMMANDS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib import metadata

from gateway import config_cli, keys_cli, loadgen_cli, prices_cli, simulate_cli
from gateway.doctor.command import register as register_doctor
from gateway.serving.command import register as register_serve

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

# in the order `switchboard --help` lists them
COMMANDS: list[Register] = [
    register_serve,
    config_cli.register,
    register_doctor,
    prices_cli.register,
    keys_cli.register,
    loadgen_cli.register,
    simulate_cli.register,
]


def version() -> str:
    try:
        return metadata.version("switchboard")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchboard",
        description="An OpenAI-compatible LLM gateway that routes each request to the "
        "provider deployment that fits it best.",
        epilog="`switchboard COMMAND --help` describes a command.",
    )
    parser.add_argument("--version", action="version", version=f"switchboard {version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in COMMANDS:
        register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # a bare `switchboard`: say what there is
        parser.print_help()
        return 0
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
