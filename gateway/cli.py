"""`switchboard serve`, `check-config`, `loadgen`, `prices`, `keys`, `usage` and `simulate`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from gateway.config import EMBEDDED_CONFIG, Config, ConfigError, load_config
from gateway.keys_cli import add_arguments as add_keys_arguments
from gateway.keys_cli import add_usage_arguments
from gateway.loadgen.options import add_arguments as add_loadgen_arguments
from gateway.prices_cli import add_arguments as add_prices_arguments
from gateway.services import Services
from gateway.simulate_cli import add_arguments as add_simulate_arguments

APP_FACTORY = "gateway.asgi:app_from_environment"


def _config_path(given: str | None) -> Path:
    return Path(given or os.environ.get("SWITCHBOARD_CONFIG") or EMBEDDED_CONFIG)


def _validated(path: str | Path) -> Config:
    """The config, checked as far as serving it would check it (providers built, every
    deployment priced), without binding a port or touching the network."""
    config = load_config(path)
    Services(config)
    return config


def _check_config(args: argparse.Namespace) -> int:
    try:
        config = _validated(args.file)
    except ConfigError as exc:
        print(f"invalid config: {exc}", file=sys.stderr)
        return 1
    print(
        f"{args.file}: ok ({len(config.providers)} providers, {len(config.models)} models, "
        f"store {config.store.split('://')[0]}, auth {'none' if config.auth == 'none' else 'keys'})"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    path = _config_path(args.config)
    try:
        _validated(path)  # refuse a broken config before binding the port
    except ConfigError as exc:
        print(f"invalid config: {exc}", file=sys.stderr)
        return 1
    os.environ["SWITCHBOARD_CONFIG"] = str(path)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    print(
        f"switchboard: serving {path} on http://{args.host}:{args.port} ({args.server})", flush=True
    )
    if args.server == "granian":
        try:
            from granian.constants import Interfaces, Loops
            from granian.server import Server as Granian
        except ImportError:
            print(
                "--server granian needs the extra: pip install 'switchboard[granian]'",
                file=sys.stderr,
            )
            return 1

        Granian(
            APP_FACTORY,
            address=args.host,
            port=args.port,
            interface=Interfaces.ASGI,
            factory=True,
            loop=Loops.uvloop,
            workers=1,
            log_access=False,
        ).serve()
        return 0
    import uvicorn

    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=args.log_level,
        timeout_graceful_shutdown=10,
        # we read no client addresses, so parsing X-Forwarded-* on every request is waste
        proxy_headers=False,
        server_header=False,
    )
    return 0


def _loadgen(args: argparse.Namespace) -> int:
    from gateway.loadgen.command import run  # rich and the client load only for this command

    return run(args)


def _prices(args: argparse.Namespace) -> int:
    from gateway.prices_cli import run

    return run(args, str(_config_path(None)))


def _simulate(args: argparse.Namespace) -> int:
    from gateway.simulate_cli import run

    return run(args)


def _keys(args: argparse.Namespace) -> int:
    from gateway.keys_cli import run

    return run(args, str(_config_path(None)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="switchboard", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument(
        "--config", help="YAML config (default: $SWITCHBOARD_CONFIG, else the embedded demo)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--server", choices=["uvicorn", "granian"], default="uvicorn")
    serve.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    serve.set_defaults(run=_serve)

    check = commands.add_parser("check-config", help="validate a config file without serving")
    check.add_argument("file")
    check.set_defaults(run=_check_config)

    loadgen = commands.add_parser(
        "loadgen", help="send demo traffic to a gateway and watch where it is routed"
    )
    add_loadgen_arguments(loadgen)
    loadgen.set_defaults(run=_loadgen)

    prices = commands.add_parser("prices", help="override deployment prices live")
    add_prices_arguments(prices)
    prices.set_defaults(run=_prices)
    keys = commands.add_parser("keys", help="create, list, update and revoke gateway keys")
    add_keys_arguments(keys)
    keys.set_defaults(run=_keys)
    usage = commands.add_parser("usage", help="spend from the ledger, as a table")
    add_usage_arguments(usage)
    usage.set_defaults(run=_keys)

    simulate = commands.add_parser(
        "simulate", help="run a routing scenario in virtual time and report how it routed"
    )
    add_simulate_arguments(simulate)
    simulate.set_defaults(run=_simulate)

    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
