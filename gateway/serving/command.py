"""`switchboard serve`: check the config, bind the port, then serve (one process, or
`--workers N` of them on the one port)."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys

from gateway.config import ConfigError
from gateway.config_cli import config_path, report_problems, report_warnings, validated
from gateway.serving.listener import ListenError, listen
from gateway.serving.server import APP_FACTORY, LOG_FORMAT, run_worker, uvicorn_config
from gateway.serving.supervisor import Supervisor

WORKERS_ENV = "SWITCHBOARD_WORKERS"  # how many processes serve this config, for the app


def cores() -> int:
    """The cores this process may run on (a cpuset or `taskset` counts, a CPU quota not)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _workers(text: str) -> int:
    if text == "auto":
        return cores()
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number or 'auto', not {text!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"at least 1, not {count}")
    return count


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"more than 0, not {text}")
    return value


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the gateway",
        description="Serve the OpenAI-compatible API. The config is checked first, then "
        "the port bound; only then does it say `serving`. On SIGTERM it stops accepting, "
        "answers /readyz with 503, and lets requests and streams in flight finish.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    serve.add_argument(
        "--config",
        default=argparse.SUPPRESS,  # no "(default: None)" in the help
        help="YAML config; when not given: $SWITCHBOARD_CONFIG, else the embedded demo",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on")
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="processes serving the port: a number, or 'auto' for one per core",
    )
    serve.add_argument(
        "--drain-timeout",
        type=_positive,
        default=30.0,
        help="seconds that requests and streams in flight get to finish after SIGTERM",
    )
    serve.add_argument(
        "--server", choices=["uvicorn", "granian"], default="uvicorn", help="HTTP server"
    )
    serve.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    serve.set_defaults(run=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    path = config_path(getattr(args, "config", None))
    try:
        config = validated(path)  # refuse a broken config before binding the port
    except ConfigError as exc:
        report_problems(path, exc)
        return 1
    report_warnings(path, config)
    if args.server == "granian" and not _granian_installed():
        print(
            "--server granian needs the extra: pip install 'switchboard[granian]'", file=sys.stderr
        )
        return 1
    if args.workers > 1 and config.store.startswith("memory://"):
        print(
            f"{path}: warning: store memory:// with {args.workers} workers: each worker "
            "learns latency, errors and health on its own, and live prices cannot be set "
            "(they would reach one worker); use a Redis store to share them",
            file=sys.stderr,
        )
    try:
        sock = listen(args.host, args.port)
    except ListenError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 1
    os.environ["SWITCHBOARD_CONFIG"] = str(path)
    os.environ[WORKERS_ENV] = str(args.workers)
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
    workers = f"{args.workers} worker{'s' if args.workers > 1 else ''}"
    print(
        f"switchboard: serving {path} on http://{args.host}:{args.port} ({args.server}, {workers})",
        flush=True,
    )
    if args.server == "granian":
        sock.close()  # granian binds the port itself; ours only proved it free
        return _granian(args)
    server = uvicorn_config(args.log_level, args.drain_timeout)
    if args.workers == 1:
        run_worker(server, sock, args.log_level)
        return 0
    return Supervisor(
        server, sock, args.workers, log_level=args.log_level, drain_timeout=args.drain_timeout
    ).run()


def _granian_installed() -> bool:
    return importlib.util.find_spec("granian") is not None


def _granian(args: argparse.Namespace) -> int:
    """Granian runs its own workers and its own shutdown: /readyz does not turn 503 while
    it drains (uvicorn, the default, does)."""
    from granian.constants import Interfaces, Loops
    from granian.server import Server as Granian

    Granian(
        APP_FACTORY,
        address=args.host,
        port=args.port,
        interface=Interfaces.ASGI,
        factory=True,
        loop=Loops.uvloop,
        workers=args.workers,
        log_access=False,
    ).serve()
    return 0
