"""Bedrock failures → our error classes.

AWS names the failure: in the `x-amzn-errortype` header of an HTTP error (with the body
`{"message": …}`), or in the `:exception-type` header of an exception event mid-stream.
The name decides the class; the HTTP status is the fallback for names we do not know.
(Error list: API reference, Converse and ConverseStream "Errors"; Bedrock user guide,
"Troubleshooting Amazon Bedrock API error codes".)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import msgspec

from providers.bedrock.wire import BedrockStreamException, error_decoder, stream_exception_decoder
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

Make = Callable[[str, str, int | None, float | None], ProviderError]


def _rejected(provider: str, message: str, status: int | None, _: float | None) -> ProviderError:
    return UpstreamRejectedRequest(
        f"{provider}: {message}", provider=provider, upstream_status=status, status=400
    )


def _rate_limited(
    provider: str, message: str, status: int | None, retry_after: float | None
) -> ProviderError:
    return UpstreamRateLimited(
        f"{provider}: {message}", provider=provider, upstream_status=status, retry_after=retry_after
    )


def _auth(provider: str, message: str, status: int | None, _: float | None) -> ProviderError:
    # AWS's text may name the account or the role: the client gets only our own words
    return UpstreamAuthFailed(
        f"{provider} refused the gateway's AWS credentials or their permissions",
        provider=provider,
        upstream_status=status,
    )


def _unavailable(provider: str, message: str, status: int | None, _: float | None) -> ProviderError:
    return UpstreamUnavailable(f"{provider}: {message}", provider=provider, upstream_status=status)


def _timeout(provider: str, message: str, status: int | None, _: float | None) -> ProviderError:
    return UpstreamTimeout(f"{provider}: {message}", provider=provider, upstream_status=status)


# AWS error names, lower-cased: HTTP errors spell them `ThrottlingException`, stream
# exception events `throttlingException`
_BY_NAME: dict[str, Make] = {
    "validationexception": _rejected,
    "throttlingexception": _rate_limited,
    # "exceeds the service quota for your account … resubmit later" (sent as a 400)
    "servicequotaexceededexception": _rate_limited,
    "accessdeniedexception": _auth,  # also: model access not granted to this account
    "unrecognizedclientexception": _auth,
    "invalidsignatureexception": _auth,
    "incompletesignatureexception": _auth,
    "missingauthenticationtokenexception": _auth,
    "expiredtokenexception": _auth,
    "invalidclienttokenid": _auth,
    # our configured model id is wrong for this region or account: another may serve
    "resourcenotfoundexception": _unavailable,
    "modeltimeoutexception": _timeout,
    # a 429 in the API reference, but a model still loading, not a quota: try elsewhere
    "modelnotreadyexception": _unavailable,
    "modelerrorexception": _unavailable,  # 424: the model failed on this request
    "modelstreamerrorexception": _unavailable,  # 424 mid-stream: "retry your request"
    "serviceunavailableexception": _unavailable,
    "internalserverexception": _unavailable,
    "internalfailure": _unavailable,
}


def error_name(value: str | None) -> str:
    """`ValidationException:http://internal.amazon.com/coral/…` → `validationexception`."""
    return (value or "").split(":", 1)[0].strip().lower()


def classify_http_error(
    status: int, headers: Mapping[str, str], body: bytes, provider: str
) -> ProviderError:
    try:
        message = error_decoder.decode(body).text
    except (msgspec.DecodeError, msgspec.ValidationError):
        message = None
    name = error_name(headers.get("x-amzn-errortype"))
    text = message or name or f"HTTP {status}"
    retry_after = retry_after_seconds(headers)
    make = _BY_NAME.get(name)
    if make is not None:
        return make(provider, text, status, retry_after)
    return error_for_status(
        status, f"{provider}: {text}", provider=provider, retry_after=retry_after
    )


def classify_stream_exception(exception_type: str, payload: bytes, provider: str) -> ProviderError:
    """An exception event that ended a converse-stream answer."""
    try:
        detail = stream_exception_decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        detail = BedrockStreamException()
    text = detail.message or exception_type or "stream failed"
    if detail.original_message:
        text = f"{text} ({detail.original_message})"
    make = _BY_NAME.get(error_name(exception_type), _unavailable)
    return make(provider, text, detail.original_status_code, None)
