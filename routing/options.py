"""Per-request routing controls: the gateway's request extensions, typed."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from routing.config import Strategy


class MaxPrice(msgspec.Struct, kw_only=True):
    prompt: float | None = None  # USD per million tokens
    completion: float | None = None


class RoutingPreferences(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`routing: {..}` (and `gateway.routing`)."""

    strategy: Strategy | None = None
    order: list[str] | None = None
    only: list[str] | None = None
    ignore: list[str] | None = None
    allow_fallbacks: bool = True
    max_price: MaxPrice | None = None
    max_latency_ms: float | None = None


class ProviderPreferences(msgspec.Struct, kw_only=True):
    """OpenRouter's `provider: {..}` object, with OpenRouter's meaning."""

    sort: Literal["price", "latency", "throughput"] | None = None
    order: list[str] | None = None
    only: list[str] | None = None
    ignore: list[str] | None = None
    allow_fallbacks: bool = True
    max_price: MaxPrice | None = None
    require_parameters: bool = False


class GatewayOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`gateway: {..}`, Auriko style."""

    models: list[str] | None = None
    routing: RoutingPreferences | None = None
    metadata: dict[str, Any] | None = None


class RouteOptions(msgspec.Struct, kw_only=True):
    """Everything routing was asked, gathered from whichever extension the client used."""

    models: list[str]  # in the order to try
    routing: RoutingPreferences = msgspec.field(default_factory=RoutingPreferences)
    provider: ProviderPreferences | None = None
    metadata: dict[str, Any] | None = None
