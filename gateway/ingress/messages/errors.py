"""Anthropic's error envelope, for every answer under `/v1/messages`.

`{"type": "error", "error": {"type": …, "message": …}, "request_id": …}` with the
error types of Anthropic's errors page, so the `anthropic` SDK raises the exception a
client expects (it picks the class by HTTP status, which stays the gateway's but for
`overloaded_error`: 529, as Anthropic answers it, so that the SDK raises its
`OverloadedError` and Claude Code treats it as overload, switching to its
`--fallback-model` after repeated ones, where a 502 is just a server error). The
gateway's specific code (`no_candidate`, `upstream_timeout`, …) goes in the
`x-switchboard-error-code` header: the envelope has no field for it that every SDK
version reads as free text.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from providers.errors import SwitchboardError

MESSAGES_PATH = "/v1/messages"

_TYPE_BY_STATUS = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
}
# the deployments could not take the request now: what Anthropic calls overloaded
_OVERLOADED = frozenset({"upstream_unavailable", "no_healthy_deployment"})


class _ErrorOut(msgspec.Struct):
    type: str
    message: str


class _EnvelopeOut(msgspec.Struct, kw_only=True):
    type: Literal["error"] = "error"
    error: _ErrorOut
    request_id: str | None = None


_encoder = msgspec.json.Encoder()


def is_messages_path(path: str) -> bool:
    return path == MESSAGES_PATH or path.startswith(MESSAGES_PATH + "/")


def anthropic_error_type(error: SwitchboardError) -> str:
    if error.code in _OVERLOADED:
        return "overloaded_error"
    kind = _TYPE_BY_STATUS.get(error.status)
    if kind is not None:
        return kind
    return "invalid_request_error" if 400 <= error.status < 500 else "api_error"


def anthropic_status(error: SwitchboardError) -> int:
    """The HTTP status of the answer: the gateway's, but Anthropic's 529 for overload."""
    return 529 if error.code in _OVERLOADED else error.status


def anthropic_error_json(error: SwitchboardError, request_id: str | None) -> bytes:
    envelope = _EnvelopeOut(
        error=_ErrorOut(anthropic_error_type(error), error.message), request_id=request_id
    )
    return _encoder.encode(envelope)


def anthropic_error(
    error: SwitchboardError, request_id: str | None
) -> tuple[bytes, dict[str, str]]:
    """The body and the headers Anthropic's clients read besides the gateway's."""
    headers = {"x-switchboard-error-code": error.code}
    if request_id:
        headers["request-id"] = request_id
    return anthropic_error_json(error, request_id), headers
