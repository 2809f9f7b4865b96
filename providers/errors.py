"""One error hierarchy for the whole gateway.

Every failure a client can see is a `SwitchboardError`: it carries, as data, the HTTP
status, the OpenAI error `type`, a specific `code` and the offending `param`. Upstream
failures are `ProviderError`s, which add how the dispatcher should react (retry the same
deployment, fall back to another one, or stop) so that policy is decided by class, not by
string matching on messages.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import msgspec


class ErrorBody(msgspec.Struct):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody


_encoder = msgspec.json.Encoder()


class SwitchboardError(Exception):
    """A failure the client sees as an OpenAI error envelope."""

    status: int = 500
    type: str = "api_error"
    code: str = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}

    def envelope(self) -> ErrorEnvelope:
        return ErrorEnvelope(ErrorBody(self.message, self.type, self.param, self.code))

    def to_json(self) -> bytes:
        return _encoder.encode(self.envelope())


# --- client-side errors (raised by the gateway and routing) -------------------------


class InvalidRequest(SwitchboardError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_value"


class AuthenticationFailed(SwitchboardError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(SwitchboardError):
    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class NotFound(SwitchboardError):
    status = 404
    type = "not_found_error"
    code = "not_found"


class RequestTooLarge(SwitchboardError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


# --- upstream errors (raised by provider adapters) ----------------------------------


class ProviderError(SwitchboardError):
    """An upstream call failed. Class attributes say what the dispatcher may do next."""

    status = 502
    type = "api_error"
    code = "upstream_error"
    retryable: bool = False  # may the same deployment be tried again?
    fallback: bool = True  # may another deployment be tried?
    # For the log only, never sent to a client; set by the HTTP client: the upstream host
    # the try went to, what went wrong on the wire, and the start of a failed answer's body
    upstream_host: str | None = None
    detail: str | None = None
    upstream_body: str | None = None

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        upstream_status: int | None = None,
        retry_after: float | None = None,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code, status=status)
        self.provider = provider
        self.upstream_status = upstream_status
        self.retry_after = retry_after
        if error_type is not None:
            self.type = error_type


class UpstreamRejectedRequest(ProviderError):
    """4xx for the request itself: any other provider would refuse it too."""

    status = 400
    type = "invalid_request_error"
    code = "upstream_rejected_request"
    retryable = False
    fallback = False


class UpstreamAuthFailed(ProviderError):
    """Our provider key was refused: the client is not at fault, another deployment may work."""

    code = "upstream_auth_failed"
    retryable = False
    fallback = True


class UpstreamRateLimited(ProviderError):
    status = 429
    type = "rate_limit_error"
    code = "upstream_rate_limited"
    retryable = True
    fallback = True


class UpstreamUnavailable(ProviderError):
    """5xx / overloaded: transient on the provider's side."""

    code = "upstream_unavailable"
    retryable = True
    fallback = True


class UpstreamTimeout(ProviderError):
    status = 504
    code = "upstream_timeout"
    retryable = True
    fallback = True


class UpstreamConnectFailed(ProviderError):
    code = "upstream_connect_failed"
    retryable = True
    fallback = True


class UpstreamProtocolError(ProviderError):
    """The upstream answered something that is not its documented wire format."""

    code = "upstream_bad_response"
    retryable = False
    fallback = True


class UpstreamStreamCut(ProviderError):
    code = "upstream_stream_cut"
    retryable = True
    fallback = True


def error_for_status(
    status: int,
    message: str,
    *,
    provider: str,
    retry_after: float | None = None,
    param: str | None = None,
    code: str | None = None,
) -> ProviderError:
    """Map an upstream HTTP status to the error class that decides what happens next."""
    if status in (401, 403):
        return UpstreamAuthFailed(
            f"{provider} refused the gateway's credentials",
            provider=provider,
            upstream_status=status,
        )
    if status == 429:
        return UpstreamRateLimited(
            message, provider=provider, upstream_status=status, retry_after=retry_after
        )
    if status in (408, 504):
        return UpstreamTimeout(message, provider=provider, upstream_status=status)
    if status >= 500 or status in (404, 409):
        # a 404 means our configured model id is wrong for this deployment, not the
        # client's fault: another deployment may well serve the request
        return UpstreamUnavailable(message, provider=provider, upstream_status=status)
    return UpstreamRejectedRequest(
        message,
        provider=provider,
        upstream_status=status,
        param=param,
        code=code,
        status=status if status in (400, 413, 422) else 400,
    )


def retry_after_header(seconds: float | None) -> str:
    """`Retry-After` as clients read it: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds or 1)))


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds from OpenAI's `retry-after-ms` or the standard `Retry-After` in its
    delta-seconds form. An HTTP date is rare from LLM APIs: the default cooldown applies."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if math.isfinite(seconds):  # "nan" and "inf" parse as floats, and mean nothing
            return max(seconds, 0.0)
    return None
