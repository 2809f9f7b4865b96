"""`routing_metadata`: who served a request, why, how fast and at what cost."""

from __future__ import annotations

import msgspec


class Cost(msgspec.Struct, kw_only=True):
    usd: float
    input_usd: float
    output_usd: float
    estimated: bool  # true when the upstream reported no usage and we counted ourselves


class Attempt(msgspec.Struct, kw_only=True):
    """A failed try on the way to the answer."""

    provider: str
    model: str  # the canonical model it was tried for (models[] can name several)
    status: int | None  # the upstream's HTTP status, when it answered one
    error: str  # the error code
    latency_ms: float


class RoutingMetadata(msgspec.Struct, kw_only=True):
    provider: str
    provider_model_id: str
    model_canonical: str
    routing_strategy: str
    cost: Cost
    latency_ms: float
    ttft_ms: float | None
    throughput_tps: float | None
    attempts: list[Attempt]
    request_id: str
