"""Every failure leaves the gateway in its API's error envelope (OpenAI's; Anthropic's on
`/v1/messages`), never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException

from gateway.accounting import Accounts
from gateway.ingress.messages.errors import anthropic_error, anthropic_status, is_messages_path
from gateway.request_ids import request_id_for
from gateway.secrets import scrub
from providers.errors import (
    InvalidRequest,
    NotFound,
    ProviderError,
    RequestTooLarge,
    SwitchboardError,
    retry_after_header,
)

log = logging.getLogger("switchboard.errors")

JSON = "application/json"

# An error's body and its extra headers, in one API's envelope
ErrorShape = Callable[[SwitchboardError, str | None], tuple[bytes, dict[str, str]]]


def openai_error(error: SwitchboardError, request_id: str | None) -> tuple[bytes, dict[str, str]]:
    return error.to_json(), {}


def error_shape(path: str) -> ErrorShape:
    """The envelope the clients of this path read: Anthropic's on the Messages API
    (`/v1/messages…`), OpenAI's everywhere else."""
    return anthropic_error if is_messages_path(path) else openai_error


def error_response(
    error: SwitchboardError,
    request_id: str | None = None,
    *,
    extra_headers: dict[str, str] | None = None,
    shape: ErrorShape = openai_error,
) -> Response[bytes]:
    scrub(error)  # an upstream may have echoed the provider key it was sent
    body, headers = shape(error, request_id)
    headers.update(extra_headers or {})
    headers.update(error.headers)
    if request_id:
        headers["x-request-id"] = request_id
    if error.status == 429 and "retry-after" not in headers:
        # a client told to slow down is told when to come back, even if upstream did not say
        retry_after = error.retry_after if isinstance(error, ProviderError) else None
        headers["retry-after"] = retry_after_header(retry_after)
    status = anthropic_status(error) if shape is anthropic_error else error.status
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def _request_id(request: Request[Any, Any, Any]) -> str:
    value = request.scope.get("state", {}).get("request_id")
    # refused before a handler ran (unknown route, wrong method): still an x-request-id
    return value if isinstance(value, str) else request_id_for(request.headers)


def _answer(request: Request[Any, Any, Any], error: SwitchboardError) -> Response[bytes]:
    # no services before the lifespan has run (or if it failed): nothing to account on
    services = getattr(request.app.state, "services", None)
    request_id = _request_id(request)
    scrub(error)  # before anything reads it: the account's sinks and the client alike
    extra: dict[str, str] | None = None
    if services is not None:
        # every error answer closes its request's account; a request refused before a
        # handler opened one (unknown route, wrong method) is accounted under its path
        account = Accounts.current(request.scope)
        if account is None:
            account = services.accounts.open(request.scope, request.scope["path"])
            account.request_id = request_id
        account.failed(error)
        extra = account.headers
        if account.admitted is None and account.key is not None:
            # refused before admission: a limited key still learns where its limits stand
            caller = services.auth.by_name.get(account.key)
            if caller is not None and caller.rates:
                extra = {**services.governance.known_headers(caller), **extra}
    return error_response(
        error,
        request_id,
        extra_headers=extra,
        shape=error_shape(request.scope["path"]),
    )


def handle_switchboard_error(
    request: Request[Any, Any, Any], exc: SwitchboardError
) -> Response[bytes]:
    return _answer(request, exc)


_STATUS_ERRORS: dict[int, type[SwitchboardError]] = {
    400: InvalidRequest,
    404: NotFound,
    413: RequestTooLarge,
}


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """Litestar's own refusals (unknown route, wrong method, body too large)."""
    status = exc.status_code
    if status == 413:
        error: SwitchboardError = RequestTooLarge("The request body is too large.")
    elif status == 405:
        error = InvalidRequest(
            f"Method {request.method} is not allowed on {request.url.path}.",
            code="method_not_allowed",
            status=405,
        )
    elif status == 404:
        error = NotFound(
            f"Unknown endpoint {request.method} {request.url.path}.", code="unknown_url"
        )
    else:
        cls = _STATUS_ERRORS.get(status, SwitchboardError)
        error = cls(str(exc.detail), status=status)
    return _answer(request, error)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    log.exception(
        "unhandled error on %s %s request_id=%s",
        request.method,
        request.url.path,
        _request_id(request),
    )
    error = SwitchboardError("The gateway failed to handle this request.", code="internal_error")
    return _answer(request, error)
