"""What a lookup answers: our own view of a past request, and OpenRouter's shape."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from gateway.accounting import RequestRecord
from gateway.accounting.record import CLIENT_CLOSED
from providers.chat_types import CompletionTokensDetails, Usage
from routing.metadata import Attempt, RoutingMetadata


class Cost(msgspec.Struct, kw_only=True):
    usd: float
    estimated: bool  # the upstream reported no usage: priced on the gateway's count


class Timings(msgspec.Struct, kw_only=True):
    duration_ms: float  # arrival to the last byte, as the client waited
    latency_ms: float | None  # the serving try alone
    ttft_ms: float | None
    tokens_per_second: float | None


class Generation(msgspec.Struct, kw_only=True):
    """`GET /v1/generations/{id}`."""

    object: str = "generation"
    id: str  # the request id (`x-request-id`, `routing_metadata.request_id`)
    created_at: str  # when the request arrived, UTC
    endpoint: str
    key: str | None
    team: str | None
    model: str | None  # as the client asked
    stream: bool
    status: int
    error_code: str | None
    routing_metadata: RoutingMetadata | None
    usage: Usage | None
    cost: Cost
    timings: Timings
    attempts: list[Attempt]  # failed tries, the error answer's too
    replayed: bool


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def generation(record: RequestRecord) -> Generation:
    metadata = record.routing_metadata
    return Generation(
        id=record.request_id,
        created_at=_when(record.started_at),
        endpoint=record.endpoint,
        key=record.key,
        team=record.team,
        model=record.model,
        stream=record.stream,
        status=record.status,
        error_code=record.error_code,
        routing_metadata=metadata,
        usage=record.usage,
        cost=Cost(usd=record.cost_usd, estimated=record.cost_estimated),
        timings=Timings(
            duration_ms=record.duration_ms,
            latency_ms=metadata.latency_ms if metadata else None,
            ttft_ms=metadata.ttft_ms if metadata else None,
            tokens_per_second=metadata.throughput_tps if metadata else None,
        ),
        attempts=record.attempts,
        replayed=record.replayed,
    )


class OpenRouterGeneration(msgspec.Struct, kw_only=True):
    """The fields of OpenRouter's `GET /api/v1/generation` data that a gateway knows,
    with its names and units (USD, milliseconds), and `routing_metadata` besides."""

    id: str
    total_cost: float
    usage: float  # OpenRouter's name for what was charged, in USD
    created_at: str
    model: str | None
    streamed: bool
    cancelled: bool  # the client left before the end
    provider_name: str | None
    latency: float  # ms
    generation_time: float | None  # ms, the serving try
    tokens_prompt: int | None
    tokens_completion: int | None
    native_tokens_prompt: int | None
    native_tokens_completion: int | None
    native_tokens_cached: int | None
    native_tokens_reasoning: int | None
    is_byok: bool = False
    origin: str = ""
    routing_metadata: RoutingMetadata | None


class OpenRouterEnvelope(msgspec.Struct):
    data: OpenRouterGeneration


def openrouter_generation(record: RequestRecord) -> OpenRouterEnvelope:
    metadata = record.routing_metadata
    usage = record.usage
    details = usage.completion_tokens_details if usage else None
    return OpenRouterEnvelope(
        OpenRouterGeneration(
            id=record.request_id,
            total_cost=record.cost_usd,
            usage=record.cost_usd,
            created_at=_when(record.started_at),
            model=metadata.model_canonical if metadata else record.model,
            streamed=record.stream,
            cancelled=record.status == CLIENT_CLOSED,
            provider_name=metadata.provider if metadata else None,
            latency=record.duration_ms,
            generation_time=metadata.latency_ms if metadata else None,
            tokens_prompt=usage.prompt_tokens if usage else None,
            tokens_completion=usage.completion_tokens if usage else None,
            native_tokens_prompt=usage.prompt_tokens if usage else None,
            native_tokens_completion=usage.completion_tokens if usage else None,
            native_tokens_cached=usage.cached_tokens if usage else None,
            native_tokens_reasoning=(
                details.reasoning_tokens if isinstance(details, CompletionTokensDetails) else None
            ),
            routing_metadata=metadata,
        )
    )
