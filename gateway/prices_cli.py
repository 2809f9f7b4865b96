"""`switchboard prices set|clear|list`: live price overrides.

Written straight to the config's shared store (Redis), where every replica reads them
within one snapshot refresh; or, with `--gateway`, through a running gateway's admin
endpoint (the only way to reach a `memory://` store, which lives inside that process).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import msgspec

from gateway.config import Config, ConfigError, load_config
from routing.stats import PriceOverride
from routing.store.errors import StoreUnavailable
from routing.store.factory import open_store


class PricesFailed(Exception):
    """A message for the operator; the command exits 1."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    for name, help_text in (
        ("set", "override a deployment's price (USD per million tokens)"),
        ("clear", "go back to the config's price"),
        ("list", "show the overrides in force"),
    ):
        action = actions.add_parser(name, help=help_text)
        if name != "list":
            action.add_argument("model", help="the canonical model, as in `models:`")
            action.add_argument("provider", help="a provider serving it, as in `providers:`")
        if name == "set":
            action.add_argument("--input", type=float, required=True, dest="input_price")
            action.add_argument("--output", type=float, required=True, dest="output_price")
            action.add_argument("--cached", type=float, dest="cached_price")
        action.add_argument(
            "--config", help="the gateway's config: its store is written (default as serve)"
        )
        action.add_argument("--gateway", help="a running gateway's URL: use its admin endpoint")
        action.add_argument("--admin-key", help="with --gateway (default: $SWITCHBOARD_ADMIN_KEY)")


def _check_deployment(config: Config, model: str, provider: str) -> None:
    deployments = config.models.get(model)
    if deployments is None:
        raise PricesFailed(f"the config has no model '{model}'")
    if all(d.provider != provider for d in deployments.deployments):
        raise PricesFailed(f"the model '{model}' has no deployment on provider '{provider}'")


def _price(args: argparse.Namespace) -> PriceOverride:
    prices = (args.input_price, args.output_price, args.cached_price)
    if any(p is not None and p < 0 for p in prices):
        raise PricesFailed("prices are USD per million tokens and cannot be negative")
    return PriceOverride(
        input_per_mtok=args.input_price,
        output_per_mtok=args.output_price,
        cached_input_per_mtok=args.cached_price,
    )


async def _in_store(args: argparse.Namespace, config_path: str) -> str:
    config = load_config(config_path)
    if config.store.startswith("memory://"):
        raise PricesFailed(
            "this config's store is memory://, which lives inside the gateway process: "
            "use --gateway URL --admin-key KEY"
        )
    try:
        store = open_store(config.store, config.routing.metrics)
    except ValueError as exc:
        raise PricesFailed(f"store: {exc}") from None
    try:
        if args.action == "list":
            await store.sync()
            if store.status().degraded:
                raise PricesFailed(f"the store is unreachable: {store.status().detail}")
            return _listing(msgspec.to_builtins(store.snapshot().prices))
        _check_deployment(config, args.model, args.provider)
        price = _price(args) if args.action == "set" else None
        await store.set_price(args.model, args.provider, price)
        return f"{args.action}: {args.model} on {args.provider}"
    except StoreUnavailable as exc:
        raise PricesFailed(str(exc)) from None
    finally:
        await store.aclose()


def _listing(prices: dict[str, Any]) -> str:
    if not prices:
        return "no price overrides: every deployment is at its config price"
    lines = []
    for key, price in sorted(prices.items()):
        model, _, provider = key.partition("|")
        cached = price.get("cached_input_per_mtok")
        lines.append(
            f"{model:30} {provider:20} input {price['input_per_mtok']:g}  "
            f"output {price['output_per_mtok']:g}"
            + (f"  cached {cached:g}" if cached is not None else "")
        )
    return "\n".join(lines)


def _via_gateway(args: argparse.Namespace) -> str:
    import httpx  # only this path needs it; `serve` starts faster without

    key = args.admin_key or os.environ.get("SWITCHBOARD_ADMIN_KEY")
    if not key:
        raise PricesFailed("--gateway needs --admin-key or $SWITCHBOARD_ADMIN_KEY")
    url = args.gateway.rstrip("/") + "/v1/admin/prices"
    headers = {"authorization": f"Bearer {key}"}
    try:
        if args.action == "set":
            price = _price(args)
            body = {"model": args.model, "provider": args.provider, **msgspec.to_builtins(price)}
            response = httpx.put(url, json=body, headers=headers, timeout=10)
        elif args.action == "clear":
            params = {"model": args.model, "provider": args.provider}
            response = httpx.delete(url, params=params, headers=headers, timeout=10)
        else:
            response = httpx.get(url, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        raise PricesFailed(f"cannot reach the gateway at {args.gateway}: {exc}") from None
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise PricesFailed(f"the gateway refused ({response.status_code}): {message}")
    if args.action == "list":
        entries = response.json()["data"]
        return _listing({f"{e['model']}|{e['provider']}": e for e in entries})
    return f"{args.action}: {args.model} on {args.provider}"


def run(args: argparse.Namespace) -> int:
    from gateway.config_cli import config_path

    try:
        if args.gateway:
            print(_via_gateway(args))
        else:
            print(asyncio.run(_in_store(args, str(config_path(args.config)))))
    except (PricesFailed, ConfigError) as exc:
        print(f"prices: {exc}", file=sys.stderr)
        return 1
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prices = commands.add_parser("prices", help="override deployment prices live")
    add_arguments(prices)
    prices.set_defaults(run=run)
