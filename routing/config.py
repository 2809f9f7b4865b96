"""The models clients ask for, their deployments and prices, and routing defaults."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from providers.capabilities import CapabilityOverrides

Price = Annotated[float, Meta(ge=0)]  # USD per million tokens
Strategy = Literal["cost", "latency", "throughput", "balanced"]


class DeploymentConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    provider: str  # a key of `providers`
    model: str  # the provider's own id for the model
    # prices left out come from the model catalogue; a deployment it does not know must
    # set them (0 is a price too, for self-hosted models)
    input_per_mtok: Price | None = None
    output_per_mtok: Price | None = None
    cached_input_per_mtok: Price | None = None  # defaults to the input price
    capabilities: CapabilityOverrides | None = None  # corrections for this model


class ModelConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    deployments: Annotated[list[DeploymentConfig], Meta(min_length=1)]
    description: str = ""


class RoutingConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    strategy: Strategy = "balanced"
    deadline: Annotated[float, Meta(gt=0)] = 300.0  # seconds, retries and fallbacks included
