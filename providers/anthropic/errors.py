"""Anthropic's failures, classified by the documented error `type` (the HTTP status only
when the body is not Anthropic's error shape, e.g. a proxy's HTML page)."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from providers.anthropic.wire import AnthropicErrorDetail, error_decoder
from providers.errors import (
    ProviderError,
    UpstreamAuthFailed,
    UpstreamRateLimited,
    UpstreamRejectedRequest,
    UpstreamTimeout,
    UpstreamUnavailable,
    error_for_status,
    retry_after_seconds,
)


def error_message(body: bytes) -> str | None:
    """The message of an Anthropic error body, if it is one."""
    return _detail(body).message


def _detail(body: bytes) -> AnthropicErrorDetail:
    try:
        return error_decoder.decode(body).error or AnthropicErrorDetail()
    except (msgspec.DecodeError, msgspec.ValidationError):
        return AnthropicErrorDetail()


def classify_error(
    error_type: str | None,
    message: str | None,
    *,
    provider: str,
    status: int | None = None,
    retry_after: float | None = None,
) -> ProviderError:
    """The error class for an Anthropic error `type`, from an HTTP answer or a stream's
    `error` event (which has no status of its own)."""
    said = f"{provider}: {message or error_type or f'HTTP {status}'}"
    match error_type:
        case "overloaded_error" | "api_error":
            return UpstreamUnavailable(said, provider=provider, upstream_status=status)
        case "not_found_error":
            # the deployment's model id is wrong: not the client's fault, another may serve
            return UpstreamUnavailable(said, provider=provider, upstream_status=status)
        case "rate_limit_error":
            return UpstreamRateLimited(
                said, retry_after=retry_after, provider=provider, upstream_status=status
            )
        case "timeout_error":
            return UpstreamTimeout(said, provider=provider, upstream_status=status)
        case "authentication_error" | "permission_error" | "billing_error":
            # Anthropic's message is about our key or account; the client only learns
            # that this provider refused the gateway
            return UpstreamAuthFailed(
                f"{provider} refused the gateway's credentials ({error_type})",
                provider=provider,
                upstream_status=status,
            )
        case "request_too_large":
            return UpstreamRejectedRequest(
                said,
                status=413,
                code="request_too_large",
                provider=provider,
                upstream_status=status,
            )
        case "invalid_request_error":
            return UpstreamRejectedRequest(said, provider=provider, upstream_status=status)
    if status is None:
        # an in-stream error of a type this code does not know: treat it as transient
        return UpstreamUnavailable(said, provider=provider)
    return error_for_status(status, said, provider=provider, retry_after=retry_after)


def classify_status(
    status: int, headers: Mapping[str, str], body: bytes, provider: str
) -> ProviderError:
    detail = _detail(body)
    return classify_error(
        detail.type,
        detail.message,
        provider=provider,
        status=status,
        retry_after=retry_after_seconds(headers),
    )
