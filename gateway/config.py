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
from routing.store.fields import MINUTE

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
    """Config problems, each phrased `path: reason`, one a line: a file is checked whole,
    so that one run names every mistake it holds."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


class AdminConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The admin key (`/v1/admin/...`: live prices); without it those endpoints are off."""

    key_sha256: Annotated[str, Meta(pattern=r"^[0-9a-fA-F]{64}$")]


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The whole file. Only `auth` is required: an open gateway is asked for with
    `auth: none`, never the result of a forgotten section."""

    auth: Annotated[
        AuthConfig | Literal["none"],
        Meta(description="Gateway keys clients must send, or `none` for an open gateway."),
    ]
    store: Annotated[
        str,
        Meta(
            pattern=r"^(memory|redis|rediss|redis\+cluster|redis\+sentinel)://",
            description="Where live statistics, health and price overrides are shared: "
            "`memory://` (inside one process) or a Redis URL (`redis://`, `rediss://`, "
            "`redis+cluster://`, `redis+sentinel://`).",
        ),
    ] = "memory://"
    providers: Annotated[
        dict[str, ProviderConfig],
        Meta(description="Upstream APIs by the name deployments use, each with its `kind`."),
    ] = {}
    models: Annotated[
        dict[str, ModelConfig],
        Meta(description="The models clients ask for, each with the deployments serving it."),
    ] = {}
    routing: Annotated[
        RoutingConfig, Meta(description="How a deployment is chosen, retried and avoided.")
    ] = msgspec.field(default_factory=RoutingConfig)
    limits: Annotated[LimitsConfig, Meta(description="Limits on what clients send.")] = (
        msgspec.field(default_factory=LimitsConfig)
    )
    admin: Annotated[
        AdminConfig | None,
        Meta(description="The admin key; without it the `/v1/admin/...` endpoints are off."),
    ] = None
    governance: Annotated[
        GovernanceConfig,
        Meta(
            description="The gateway-wide budget, how fast changes reach every replica, the ledger."
        ),
    ] = msgspec.field(default_factory=GovernanceConfig)
    cors: Annotated[
        CorsConfig | None,
        Meta(description="Origins browsers may call the gateway from; without it, none."),
    ] = None
    responses: Annotated[
        ResponsesConfig,
        Meta(description="Where stored responses are kept for `previous_response_id`."),
    ] = msgspec.field(default_factory=ResponsesConfig)
    tracing: Annotated[
        TracingConfig | None,
        Meta(description="OpenTelemetry traces over OTLP/HTTP; without it, none."),
    ] = None
    logging: Annotated[
        RequestLogConfig, Meta(description="The request log: one JSON line per request.")
    ] = msgspec.field(default_factory=RequestLogConfig)
    generations: Annotated[
        GenerationsConfig, Meta(description="Past requests kept for `GET /v1/generations/{id}`.")
    ] = msgspec.field(default_factory=GenerationsConfig)


class _Problems:
    """Collects every problem of one document; a field whose `${VAR}` is missing gets no
    second complaint about the empty text it then holds."""

    def __init__(self) -> None:
        self.found: list[str] = []
        self._unset: list[str] = []  # paths whose environment variable is missing

    def unset(self, path: str, name: str) -> None:
        self._unset.append(path)
        self.found.append(f"{path}: environment variable {name} is not set")

    def add(self, where: str, reason: str) -> None:
        if not any(where == p or where.startswith((p + ".", p + "[")) for p in self._unset):
            self.found.append(f"{where or '(top level)'}: {reason}")

    def convert(self, value: Any, type_: Any, path: str) -> Any:
        """The value as `type_`, or None (and a problem noted) when it does not fit."""
        try:
            return _convert(value, type_, path)
        except _Invalid as exc:
            self.add(exc.where, exc.reason)
            return None


class _Invalid(Exception):
    def __init__(self, where: str, reason: str) -> None:
        self.where, self.reason = where, reason


def _interpolate(value: Any, path: str, problems: _Problems) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            escaped, name = match.groups()
            if escaped:
                return "${" + name + "}"
            if name not in os.environ:
                problems.unset(path, name)
                return ""
            return os.environ[name]

        return _VAR.sub(replace, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, _join(path, str(k)), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
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
        raise _Invalid(where, text) from None


_NAMED_MAPS = ("providers", "models")  # converted entry by entry, so each names its key


def parse_config(document: Any) -> Config:
    """The config, or ConfigError listing every problem found: each provider, model and
    section is checked on its own, so one mistake does not hide the next."""
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError("(top level): expected a mapping of sections")
    problems = _Problems()
    document = _interpolate(document, "", problems)
    fields = {field.name: field for field in msgspec.structs.fields(Config)}
    for key in document:
        if key not in fields:
            problems.add("", f"Object contains unknown field `{key}`")
    for field in fields.values():
        if field.name not in document:
            if field.required:
                problems.add("", f"Object missing required field `{field.name}`")
        elif field.name not in _NAMED_MAPS:
            problems.convert(document[field.name], field.type, field.name)
    providers: dict[str, ProviderConfig] = {
        name: problems.convert(value, ProviderConfig, f"providers.{name}")
        for name, value in _named(document, "providers", problems).items()
    }
    models: dict[str, ModelConfig] = {
        name: problems.convert(value, ModelConfig, f"models.{name}")
        for name, value in _named(document, "models", problems).items()
    }
    _check_references(providers, models, problems)
    config: Config | None = None
    if not problems.found:
        rest = {k: v for k, v in document.items() if k not in _NAMED_MAPS}
        config = problems.convert(rest, Config, "")
    if config is not None and isinstance(config.auth, AuthConfig):
        _check_auth(config.auth, problems)
    if config is not None:
        _check_limits(models, config.routing.metrics.window, problems)
    if config is None or problems.found:
        raise ConfigError(*problems.found)
    config.providers = providers
    config.models = models
    return config


def _named(document: dict[str, Any], section: str, problems: _Problems) -> dict[str, Any]:
    """A section that maps names to entries (`providers`, `models`), or {} if it is not one."""
    value = problems.convert(document.get(section) or {}, dict[str, Any], section)
    return value if isinstance(value, dict) else {}


def _check_references(
    providers: dict[str, ProviderConfig], models: dict[str, ModelConfig], problems: _Problems
) -> None:
    for model_name, model in models.items():
        for i, deployment in enumerate(model.deployments if model is not None else []):
            if deployment.provider not in providers:  # a broken provider is in it as None
                problems.add(
                    f"models.{model_name}.deployments[{i}].provider",
                    f"unknown provider '{deployment.provider}'",
                )


def _check_limits(models: dict[str, ModelConfig], window: float, problems: _Problems) -> None:
    """`rpm` and `tpm` are counted over the last minute of the store's window."""
    if window >= MINUTE:
        return
    for model_name, model in models.items():
        for i, deployment in enumerate(model.deployments if model is not None else []):
            for field in ("rpm", "tpm"):
                if getattr(deployment, field) is not None:
                    problems.add(
                        f"models.{model_name}.deployments[{i}].{field}",
                        f"a limit a minute needs routing.metrics.window of at least "
                        f"{MINUTE:g} s (it is {window:g})",
                    )


def _check_auth(auth: AuthConfig, problems: _Problems) -> None:
    teams = {team.name for team in auth.teams}
    if len(teams) != len(auth.teams):
        problems.add("auth.teams", "two teams have the same name")
    names: set[str] = set()
    for i, key in enumerate(auth.keys):
        if key.name in names:
            problems.add(f"auth.keys[{i}].name", f"another key is also named '{key.name}'")
        names.add(key.name)
        if key.team is not None and key.team not in teams:
            problems.add(f"auth.keys[{i}].team", f"unknown team '{key.team}'")


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_problem(path, text, exc)) from None
    return parse_config(document)


def yaml_problem(path: Path, text: str, exc: yaml.YAMLError) -> str:
    """`file:line:column: not valid YAML: what`, with the usual fix when it is the usual
    mistake: `${VAR}` unquoted inside `{...}` or `[...]`, where YAML reads `{` as a map."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    message = f"{where}: not valid YAML: {problem}"
    if mark is not None:
        line = text.splitlines()[mark.line] if mark.line < len(text.splitlines()) else ""
        if "${" in line and re.search(r"[{\[,]\s*[^'\"]*\$\{", line):
            message += (
                "\n  hint: quote a `${VAR}` inside `{...}` or `[...]`, as in "
                'api_key: "${OPENAI_API_KEY}": unquoted, YAML reads its `{` as a mapping'
            )
    return message
