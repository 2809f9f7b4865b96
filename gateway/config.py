"""The YAML config file, decoded into typed Structs with errors that name the field.

`${VAR}` anywhere in a string reads the environment; a missing variable is an error
naming it and where it was used.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml
from msgspec import Meta

from gateway.governance.config import (
    AuthConfig,
    CorsConfig,
    GovernanceConfig,
    LimitsConfig,
)
from gateway.ingress.responses.config import ResponsesConfig
from gateway.observability.config import GenerationsConfig, RequestLogConfig, TracingConfig
from providers.config import ProviderConfig
from routing.config import ModelConfig, RoutingConfig

# `${NAME}` reads the environment; `$${NAME}` is the literal text `${NAME}`
_VAR = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")
_AT = re.compile(r" - at `\$(.*)`$")


def _embedded_config() -> Path:
    """examples/demo.yaml: packaged into the wheel, or read from the source checkout."""
    packaged = Path(__file__).resolve().parent / "embedded" / "demo.yaml"
    return (
        packaged
        if packaged.exists()
        else Path(__file__).resolve().parent.parent / "examples" / "demo.yaml"
    )


EMBEDDED_CONFIG = _embedded_config()


class ConfigError(Exception):
    """A config problem, always phrased `path: reason`."""


class AdminConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The admin key (`/v1/admin/...`: live prices); without it those endpoints are off."""

    key_sha256: Annotated[str, Meta(pattern=r"^[0-9a-fA-F]{64}$")]


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    # `auth` has no default: an open gateway must be asked for with `auth: none`
    auth: AuthConfig | Literal["none"]
    store: Annotated[
        str, Meta(pattern=r"^(memory|redis|rediss|redis\+cluster|redis\+sentinel)://")
    ] = "memory://"
    providers: dict[str, ProviderConfig] = {}
    models: dict[str, ModelConfig] = {}
    routing: RoutingConfig = msgspec.field(default_factory=RoutingConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    admin: AdminConfig | None = None
    governance: GovernanceConfig = msgspec.field(default_factory=GovernanceConfig)
    cors: CorsConfig | None = None
    responses: ResponsesConfig = msgspec.field(default_factory=ResponsesConfig)
    tracing: TracingConfig | None = None
    logging: RequestLogConfig = msgspec.field(default_factory=RequestLogConfig)
    generations: GenerationsConfig = msgspec.field(default_factory=GenerationsConfig)


class _Sections(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The top level, with the named maps left raw so that their keys reach error paths."""

    auth: Any
    store: Any = "memory://"
    providers: dict[str, Any] = {}
    models: dict[str, Any] = {}
    routing: Any = None
    limits: Any = None
    admin: Any = None
    governance: Any = None
    cors: Any = None
    responses: Any = None
    tracing: Any = None
    logging: Any = None
    generations: Any = None


def _interpolate(value: Any, path: str) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            escaped, name = match.groups()
            if escaped:
                return "${" + name + "}"
            if name not in os.environ:
                raise ConfigError(f"{path}: environment variable {name} is not set")
            return os.environ[name]

        return _VAR.sub(replace, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, _join(path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _convert(value: Any, type_: Any, path: str) -> Any:
    try:
        # strict=False: `${VAR}` yields text, and `timeout: ${TIMEOUT}` must still be a number
        return msgspec.convert(value, type_, strict=False)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _AT.search(text)
        where = path
        if match:
            text = text[: match.start()]
            where = (path + match.group(1)) if path else match.group(1).lstrip(".")
        raise ConfigError(f"{where or '(top level)'}: {text}") from None


def parse_config(document: Any) -> Config:
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError("(top level): expected a mapping of sections")
    document = _interpolate(document, "")
    sections: _Sections = _convert(document, _Sections, "")
    providers: dict[str, ProviderConfig] = {
        name: _convert(value, ProviderConfig, f"providers.{name}")
        for name, value in sections.providers.items()
    }
    models: dict[str, ModelConfig] = {
        name: _convert(value, ModelConfig, f"models.{name}")
        for name, value in sections.models.items()
    }
    config: Config = _convert(
        {k: v for k, v in document.items() if k not in ("providers", "models")}, Config, ""
    )
    config.providers = providers
    config.models = models
    _check_references(config)
    return config


def _check_references(config: Config) -> None:
    if isinstance(config.auth, AuthConfig):
        _check_auth(config.auth)
    for model_name, model in config.models.items():
        for i, deployment in enumerate(model.deployments):
            if deployment.provider not in config.providers:
                raise ConfigError(
                    f"models.{model_name}.deployments[{i}].provider: "
                    f"unknown provider '{deployment.provider}'"
                )


def _check_auth(auth: AuthConfig) -> None:
    teams = {team.name for team in auth.teams}
    if len(teams) != len(auth.teams):
        raise ConfigError("auth.teams: two teams have the same name")
    names: set[str] = set()
    for i, key in enumerate(auth.keys):
        if key.name in names:
            raise ConfigError(f"auth.keys[{i}].name: another key is also named '{key.name}'")
        names.add(key.name)
        if key.team is not None and key.team not in teams:
            raise ConfigError(f"auth.keys[{i}].team: unknown team '{key.team}'")


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    return parse_config(document)
