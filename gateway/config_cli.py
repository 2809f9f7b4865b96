"""`switchboard check-config`: a config checked whole, without serving it.

Every problem is listed in one run (a missing variable, a bad field, an unknown
provider, a deployment without a price), then warnings about a config that would start
but serve little or nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gateway.config import EMBEDDED_CONFIG, Config, ConfigError, load_config
from gateway.services import Services


def config_path(given: str | None) -> Path:
    """The config a command uses: the one given, else `$SWITCHBOARD_CONFIG`, else the
    embedded demo."""
    return Path(given or os.environ.get("SWITCHBOARD_CONFIG") or EMBEDDED_CONFIG)


def validated(path: str | Path) -> Config:
    """The config, checked as far as serving it would check it (providers built, every
    deployment priced), without binding a port or touching the network."""
    config = load_config(path)
    Services(config)
    return config


def warnings(config: Config) -> list[str]:
    """What is legal but almost surely a mistake."""
    found = []
    if not config.models:
        found.append(
            "models: none defined, so every request is refused (404 model_not_found); "
            "add a model with at least one deployment"
        )
    used = {d.provider for model in config.models.values() for d in model.deployments}
    found += [
        f"providers.{name}: no model has a deployment on it, so it is never called"
        for name in config.providers
        if name not in used
    ]
    return found


def report_problems(path: Path, error: ConfigError) -> None:
    count = len(error.problems)
    noun = "problem" if count == 1 else "problems"
    print(f"{path}: invalid config, {count} {noun}:", file=sys.stderr)
    for problem in error.problems:
        print(f"  {problem}", file=sys.stderr)


def report_warnings(path: Path, config: Config) -> None:
    for warning in warnings(config):
        print(f"{path}: warning: {warning}", file=sys.stderr)


def _check_config(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        config = validated(path)
    except ConfigError as exc:
        report_problems(path, exc)
        return 1
    report_warnings(path, config)
    print(
        f"{path}: ok ({len(config.providers)} providers, {len(config.models)} models, "
        f"store {config.store.split('://')[0]}, auth {'none' if config.auth == 'none' else 'keys'})"
    )
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        "check-config",
        help="validate a config file without serving it",
        description="Check a config file as `serve` would, without binding a port or "
        "calling a provider, and list every problem it has. `${VAR}` is read from this "
        "environment. Exit status 1 when the config is invalid. "
        "`switchboard doctor` then checks it against the real providers and store.",
    )
    check.add_argument("file", help="the YAML config")
    check.set_defaults(run=_check_config)
