"""The models clients ask for, their deployments and prices, and routing defaults."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

Price = Annotated[float, Meta(ge=0)]  # USD per million tokens
Strategy = Literal["cost", "latency", "throughput", "balanced"]


class DeploymentConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    provider: str  # a key of `providers`
    model: str  # the provider's own id for the model
    input_per_mtok: Price = 0.0
    output_per_mtok: Price = 0.0
    cached_input_per_mtok: Price | None = None  # defaults to the input price


class ModelConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    deployments: Annotated[list[DeploymentConfig], Meta(min_length=1)]
    description: str = ""


class RoutingConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    strategy: Strategy = "balanced"
    deadline: Annotated[float, Meta(gt=0)] = 300.0  # seconds, retries and fallbacks included
