"""`switchboard keys create|list|update|revoke` and `switchboard usage`.

Straight into the config's shared store (Redis), where every replica reads keys within
one refresh; or, with `--gateway URL --admin-key KEY`, through a running gateway's admin
API (the only way to reach a `memory://` store, which lives inside that process).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from gateway.config import ConfigError, load_config
from gateway.governance.config import AuthConfig
from gateway.governance.factory import open_governance_store
from gateway.governance.key_admin import KeyAdmin
from gateway.governance.keys import KeyChange, NewKey
from gateway.governance.ledger import report_days, usage
from providers.errors import SwitchboardError


class CommandFailed(Exception):
    """A message for the operator; the command exits 1."""


# --- arguments -----------------------------------------------------------------------


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="the gateway's config: its store is used")
    parser.add_argument("--gateway", help="a running gateway's URL: use its admin API")
    parser.add_argument("--admin-key", help="with --gateway (default: $SWITCHBOARD_ADMIN_KEY)")


def _limit_options(parser: argparse.ArgumentParser, *, update: bool) -> None:
    clear = " ('none' clears it)" if update else ""
    parser.add_argument("--team", help="a team of auth.teams" + clear)
    parser.add_argument("--rpm", help="requests per minute" + clear)
    parser.add_argument("--tpm", help="tokens per minute" + clear)
    parser.add_argument("--daily", help="USD per UTC day" + clear)
    parser.add_argument("--monthly", help="USD per UTC month" + clear)
    parser.add_argument(
        "--models", nargs="+", metavar="PATTERN", help="allowed model patterns (default *)"
    )
    parser.add_argument("--expires-at", help="RFC 3339 time, e.g. 2027-01-01T00:00:00Z" + clear)
    parser.add_argument(
        "--metadata", nargs="+", metavar="NAME=VALUE", help="free-form labels (replace all)"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="mint a key: its plain text is shown once")
    create.add_argument("name")
    _limit_options(create, update=False)
    listing = actions.add_parser("list", help="every key, its limits and spend (no secrets)")
    update = actions.add_parser("update", help="change a stored key's limits or models")
    update.add_argument("name")
    _limit_options(update, update=True)
    state = update.add_mutually_exclusive_group()
    state.add_argument("--disable", action="store_true", help="refuse the key until enabled")
    state.add_argument("--enable", action="store_true")
    revoke = actions.add_parser("revoke", help="delete a stored key: refused from now on")
    revoke.add_argument("name")
    for action in (create, listing, update, revoke):
        _store_options(action)


def add_usage_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="start", help="first UTC day, YYYY-MM-DD (default today)")
    parser.add_argument("--to", dest="end", help="last UTC day, YYYY-MM-DD (default today)")
    parser.add_argument(
        "--group-by", default="day", help="key, team, model, provider, day (comma-separated)"
    )
    _store_options(parser)


# --- building requests from arguments ----------------------------------------------


def _value(text: str | None, convert: Callable[[str], Any]) -> Any:
    """None: not given; 'none': clear it; else the converted value."""
    if text is None:
        return msgspec.UNSET
    if text.lower() == "none":
        return None
    try:
        return convert(text)
    except ValueError:
        raise CommandFailed(f"not a valid value: {text!r}") from None


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "team": _value(args.team, str),
        "rpm": _value(args.rpm, int),
        "tpm": _value(args.tpm, int),
        "expires_at": _value(args.expires_at, str),
    }
    daily, monthly = _value(args.daily, float), _value(args.monthly, float)
    if daily is not msgspec.UNSET or monthly is not msgspec.UNSET:
        budget = {
            k: v for k, v in (("daily", daily), ("monthly", monthly)) if v not in (msgspec.UNSET,)
        }
        fields["budget_usd"] = budget if any(v is not None for v in budget.values()) else None
    if args.models:
        fields["allowed_models"] = args.models
    if args.metadata:
        pairs = [item.partition("=") for item in args.metadata]
        if any(not sep for _, sep, _ in pairs):
            raise CommandFailed("--metadata takes NAME=VALUE pairs")
        fields["metadata"] = {name: value for name, _, value in pairs}
    if getattr(args, "disable", False):
        fields["disabled"] = True
    if getattr(args, "enable", False):
        fields["disabled"] = False
    return {k: v for k, v in fields.items() if v is not msgspec.UNSET}


def _convert(fields: dict[str, Any], type_: type[Any]) -> Any:
    try:
        return msgspec.convert(fields, type_, strict=False)
    except msgspec.ValidationError as exc:
        raise CommandFailed(str(exc)) from None


# --- output --------------------------------------------------------------------------


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")


def _keys_table(keys: list[dict[str, Any]]) -> str:
    if not keys:
        return "no keys"
    head = (
        f"{'name':24} {'source':6} {'team':14} {'prefix':9} {'rpm':>6} {'tpm':>9} "
        f"{'$/day':>9} {'$/month':>9} {'today $':>10} {'month $':>10} last used"
    )
    lines = [head]
    for key in keys:
        budget = key.get("budget_usd") or {}
        spend = key["spend"]
        state = " (disabled)" if key.get("disabled") else ""
        lines.append(
            f"{key['name']:24} {key['source']:6} {key.get('team') or '-':14} "
            f"{key.get('prefix') or '-':9} {key.get('rpm') or '-':>6} {key.get('tpm') or '-':>9} "
            f"{_money(budget.get('daily')):>9} {_money(budget.get('monthly')):>9} "
            f"{spend['today_usd']:>10.4f} {spend['month_usd']:>10.4f} "
            f"{_when(key.get('last_used_at'))}{state}"
        )
    return "\n".join(lines)


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def usage_table(report: dict[str, Any]) -> str:
    group_by: list[str] = report["group_by"]
    rows = [*report["data"], {**report["total"], group_by[0]: "TOTAL"}]
    head = " ".join(f"{d:24}" for d in group_by) + (
        f" {'cost $':>12} {'requests':>9} {'prompt':>11} {'completion':>11} {'estimated':>9}"
    )
    lines = [f"usage {report['from']} .. {report['to']}", head]
    for row in rows:
        names = " ".join(f"{row.get(d) or '-'!s:24}" for d in group_by)
        lines.append(
            f"{names} {row.get('cost_usd', 0):>12.6f} {row.get('requests', 0):>9} "
            f"{row.get('prompt_tokens', 0):>11} {row.get('completion_tokens', 0):>11} "
            f"{row.get('estimated_requests', 0):>9}"
        )
    return "\n".join(lines)


# --- straight into the store -----------------------------------------------------------


async def _in_store(args: argparse.Namespace, config_path: str) -> str:
    config = load_config(config_path)
    if config.store.startswith("memory://"):
        raise CommandFailed(
            "this config's store is memory://, which lives inside the gateway process: "
            "use --gateway URL --admin-key KEY"
        )
    try:
        store = open_governance_store(config.store, config.governance)
    except ValueError as exc:
        raise CommandFailed(f"store: {exc}") from None
    auth = config.auth if isinstance(config.auth, AuthConfig) else AuthConfig()
    admin = KeyAdmin(store, list(auth.keys), {t.name: t for t in auth.teams})
    try:
        return await _act(args, admin, store)
    except SwitchboardError as exc:
        raise CommandFailed(exc.message) from None
    finally:
        await store.aclose()


async def _act(args: argparse.Namespace, admin: KeyAdmin, store: Any) -> str:
    if args.command == "usage":
        start, end, group_by, days = report_days(args.start, args.end, args.group_by)
        rows, total = usage(await store.ledger(days), group_by)
        report = {
            "from": start,
            "to": end,
            "group_by": group_by,
            "data": msgspec.to_builtins(rows),
            "total": msgspec.to_builtins(total),
        }
        return usage_table(report)
    if args.action == "create":
        created = await admin.create(_convert({"name": args.name, **_settings(args)}, NewKey))
        return _created(msgspec.to_builtins(created))
    if args.action == "update":
        await admin.update(args.name, _convert(_settings(args), KeyChange))
        return f"updated: {args.name}"
    if args.action == "revoke":
        await admin.revoke(args.name)
        return f"revoked: {args.name}"
    return _keys_table(msgspec.to_builtins(await admin.describe()))


def _created(key: dict[str, Any]) -> str:
    return (
        f"created: {key['name']}\n{key['key']}\n"
        "This is the only time the key is shown: store it now (the gateway keeps its SHA-256)."
    )


# --- through a gateway -------------------------------------------------------------------


def _via_gateway(args: argparse.Namespace) -> str:
    import httpx

    admin_key = args.admin_key or os.environ.get("SWITCHBOARD_ADMIN_KEY")
    if not admin_key:
        raise CommandFailed("--gateway needs --admin-key or $SWITCHBOARD_ADMIN_KEY")
    base = args.gateway.rstrip("/")
    headers = {"authorization": f"Bearer {admin_key}"}
    params: dict[str, str] = {}
    body: Any = None
    if args.command == "usage":
        method, path = "GET", "/v1/usage"
        params = {"group_by": args.group_by}
        params.update({k: v for k, v in (("from", args.start), ("to", args.end)) if v})
    elif args.action == "create":
        method, path = "POST", "/v1/admin/keys"
        body = msgspec.to_builtins(_convert({"name": args.name, **_settings(args)}, NewKey))
    elif args.action == "update":
        method, path, body = "PATCH", f"/v1/admin/keys/{args.name}", _settings(args)
    elif args.action == "revoke":
        method, path = "DELETE", f"/v1/admin/keys/{args.name}"
    else:
        method, path = "GET", "/v1/admin/keys"
    try:
        response = httpx.request(
            method, base + path, params=params, json=body, headers=headers, timeout=10
        )
    except httpx.HTTPError as exc:
        raise CommandFailed(f"cannot reach the gateway at {args.gateway}: {exc}") from None
    if response.status_code not in (200, 201):
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise CommandFailed(f"the gateway refused ({response.status_code}): {message}")
    answer = response.json()
    if args.command == "usage":
        return usage_table(answer)
    if args.action == "create":
        return _created(answer)
    if args.action in ("update", "revoke"):
        return f"{args.action}d: {args.name}"
    return _keys_table(answer["data"])


def run(args: argparse.Namespace, default_config: str) -> int:
    command = "keys" if args.command == "keys" else "usage"
    try:
        if args.gateway:
            print(_via_gateway(args))
        else:
            print(asyncio.run(_in_store(args, args.config or default_config)))
    except (CommandFailed, ConfigError) as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 1
    return 0


def _run(args: argparse.Namespace) -> int:
    from gateway.config_cli import config_path

    return run(args, str(config_path(None)))


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="create, list, update and revoke gateway keys")
    add_arguments(keys)
    keys.set_defaults(run=_run)
    usage = commands.add_parser("usage", help="spend from the ledger, as a table")
    add_usage_arguments(usage)
    usage.set_defaults(run=_run)
