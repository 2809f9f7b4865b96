"""A scenario file: deployments of one model, the load, and phases that change them.

```yaml
name: degrade
strategy: latency          # the router's default strategy
seed: 1                    # same seed, same report
replicas: 1                # gateways sharing one store; the load is spread over them
load: {concurrency: 8}     # requests kept in flight (a closed loop)
deployments:               # in config order; each a profile, every field optional
  fast: {latency_ms: 300, input_per_mtok: 0.6, output_per_mtok: 0.8}
  slow: {latency_ms: 600, input_per_mtok: 0.2, output_per_mtok: 0.3}
phases:
  - {name: healthy, duration: 10}
  - {name: degraded, duration: 10, deployments: {fast: {latency_ms: 900}}}
```

A phase changes only what it names: its deployment profiles and load override the
previous phase's, field by field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from routing.config import Strategy

Positive = Annotated[float, Meta(gt=0)]
NonNegative = Annotated[float, Meta(ge=0)]
Rate = Annotated[float, Meta(ge=0, le=1)]
SCENARIOS = Path(__file__).with_name("scenarios")


class Profile(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """How a deployment behaves; a field left out keeps its earlier (or default) value."""

    present: bool | None = None  # false: not in the config (yet); a later phase adds it
    latency_ms: NonNegative | None = None  # to the whole answer, on average
    ttft_ms: NonNegative | None = None  # to the first token (streams); default latency / 4
    jitter: NonNegative | None = None  # spread of latencies (sigma of a log-normal)
    completion_tokens: Annotated[int, Meta(ge=1)] | None = None
    error_rate: Rate | None = None  # share of tries that fail
    error_status: Annotated[int, Meta(ge=400, le=599)] | None = None
    error_latency_ms: NonNegative | None = None  # how long a failure takes
    input_per_mtok: NonNegative | None = None  # USD per million tokens
    output_per_mtok: NonNegative | None = None
    capacity: Annotated[int, Meta(ge=1)] | None = None  # in flight at full speed; more slow down
    concurrency_limit: Annotated[int, Meta(ge=1)] | None = None  # more in flight: 429
    rpm_limit: Annotated[int, Meta(ge=1)] | None = None  # more tries a minute: 429


DEFAULT_PROFILE = Profile(
    present=True,
    latency_ms=400.0,
    jitter=0.1,
    completion_tokens=200,
    error_rate=0.0,
    error_status=503,
    error_latency_ms=50.0,
    input_per_mtok=1.0,
    output_per_mtok=2.0,
)


def overlay(base: Profile, change: Profile) -> Profile:
    """`base` with every field `change` sets."""
    fields = msgspec.structs.asdict(base)
    fields.update({k: v for k, v in msgspec.structs.asdict(change).items() if v is not None})
    return Profile(**fields)


class Load(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    concurrency: Annotated[int, Meta(ge=0)] | None = None  # requests kept in flight
    stream: bool | None = None
    prompt_tokens: Annotated[int, Meta(ge=1)] | None = None
    max_tokens: Annotated[int, Meta(ge=1)] | None = None
    think_ms: NonNegative | None = None  # each client's pause between its requests


DEFAULT_LOAD = Load(concurrency=8, stream=False, prompt_tokens=500, think_ms=0.0)


def overlay_load(base: Load, change: Load | None) -> Load:
    if change is None:
        return base
    fields = msgspec.structs.asdict(base)
    fields.update({k: v for k, v in msgspec.structs.asdict(change).items() if v is not None})
    return Load(**fields)


class Phase(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: str
    duration: Positive  # seconds of virtual time
    deployments: dict[str, Profile] = msgspec.field(default_factory=dict)
    load: Load | None = None
    burst: Annotated[int, Meta(ge=0)] = 0  # requests sent at once as the phase begins
    best: str | None = None  # the deployment a router that knew everything would choose


class Scenario(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    deployments: Annotated[dict[str, Profile], Meta(min_length=1)]
    phases: Annotated[list[Phase], Meta(min_length=1)]
    name: str = ""
    description: str = ""
    model: str = "m"  # the canonical model every request asks for
    strategy: Strategy = "latency"
    seed: int = 1
    replicas: Annotated[int, Meta(ge=1, le=16)] = 1
    load: Load = msgspec.field(default_factory=Load)
    routing: dict[str, Any] = msgspec.field(default_factory=dict)  # RoutingConfig fields

    def profiles(self) -> list[dict[str, Profile]]:
        """Each phase's resolved profile of every deployment (absent ones included)."""
        current = {name: overlay(DEFAULT_PROFILE, p) for name, p in self.deployments.items()}
        resolved = []
        for phase in self.phases:
            current = {
                name: overlay(p, phase.deployments[name]) if name in phase.deployments else p
                for name, p in current.items()
            }
            resolved.append(current)
        return resolved

    def loads(self) -> list[Load]:
        current = overlay_load(DEFAULT_LOAD, self.load)
        resolved = []
        for phase in self.phases:
            current = overlay_load(current, phase.load)
            resolved.append(current)
        return resolved


class ScenarioError(ValueError):
    """A scenario file that cannot be run; the message says why."""


def load_scenario(source: str | Path) -> Scenario:
    """A path, or the name of a shipped scenario (`degrade`, `recover`, ...)."""
    path = Path(source)
    if not path.exists() and (SCENARIOS / f"{source}.yaml").exists():
        path = SCENARIOS / f"{source}.yaml"
    try:
        scenario = msgspec.yaml.decode(path.read_bytes(), type=Scenario)
    except OSError as exc:
        raise ScenarioError(f"{source}: {exc.strerror or exc}") from None
    except msgspec.ValidationError as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ScenarioError(f"{source}: not YAML: {exc}") from None
    for phase in scenario.phases:
        unknown = sorted(set(phase.deployments) - set(scenario.deployments))
        if unknown:
            raise ScenarioError(
                f"{source}: phase {phase.name!r} names unknown deployments {unknown}"
            )
        if phase.best is not None and phase.best not in scenario.deployments:
            raise ScenarioError(f"{source}: phase {phase.name!r}: unknown best {phase.best!r}")
    if not scenario.name:
        scenario = msgspec.structs.replace(scenario, name=path.stem)
    return scenario


def shipped_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIOS.glob("*.yaml"))
