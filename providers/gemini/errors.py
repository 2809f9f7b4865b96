"""Gemini failures: Google's `{"error": {"code", "message", "status", "details"}}`."""

from __future__ import annotations

import math
from collections.abc import Mapping

import msgspec

from providers.errors import (
    ProviderError,
    UpstreamAuthFailed,
    error_for_status,
    retry_after_seconds,
)
from providers.gemini.wire import GeminiErrorBody, GeminiErrorEnvelope

# a streamed request without `alt=sse` gets its error inside a JSON array
_decoder = msgspec.json.Decoder(GeminiErrorEnvelope | list[GeminiErrorEnvelope])
_AUTH_STATUSES = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})
# ErrorInfo reasons that mean our key, not the request: Gemini answers a bad key with a
# 400 INVALID_ARGUMENT, which must not read as the client's fault
_KEY_REASONS = frozenset(
    {"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED"}
)


def error_body(body: bytes) -> GeminiErrorBody:
    try:
        decoded = _decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return GeminiErrorBody()
    envelope = decoded[0] if isinstance(decoded, list) and decoded else decoded
    return envelope.error if isinstance(envelope, GeminiErrorEnvelope) else GeminiErrorBody()


def _seconds(duration: str) -> float | None:
    """A protobuf Duration in JSON: decimal seconds with an "s", e.g. "7s" or "1.5s"."""
    if not duration.endswith("s"):
        return None
    try:
        seconds = float(duration[:-1])
    except ValueError:
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def retry_after(headers: Mapping[str, str], error: GeminiErrorBody) -> float | None:
    """Seconds from `Retry-After`, else from the RetryInfo detail of a 429."""
    from_header = retry_after_seconds(headers)
    if from_header is not None:
        return from_header
    for detail in error.details:
        if detail.retry_delay is not None:
            return _seconds(detail.retry_delay)
    return None


def classify_error(
    status: int, headers: Mapping[str, str], error: GeminiErrorBody, provider: str
) -> ProviderError:
    if error.status in _AUTH_STATUSES or any(d.reason in _KEY_REASONS for d in error.details):
        return UpstreamAuthFailed(
            f"{provider} refused the gateway's credentials",
            provider=provider,
            upstream_status=status,
        )
    return error_for_status(
        status,
        f"{provider}: {error.message or f'HTTP {status}'}",
        provider=provider,
        retry_after=retry_after(headers, error),
    )


def classify_status(
    status: int, headers: Mapping[str, str], body: bytes, provider: str
) -> ProviderError:
    return classify_error(status, headers, error_body(body), provider)
