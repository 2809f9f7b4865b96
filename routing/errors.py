"""Routing's client-facing errors."""

from __future__ import annotations

from providers.errors import InvalidRequest, NotFound, ProviderError, retry_after_header
from routing.metadata import Attempt


class ModelNotFound(NotFound):
    code = "model_not_found"


class NoCandidate(InvalidRequest):
    code = "no_candidate"


class RoutingFailed(ProviderError):
    """No deployment answered. The envelope stays OpenAI's (message, type, code, param);
    the message lists every failed attempt, and `attempts` holds them for logs."""

    def __init__(
        self,
        message: str,
        attempts: list[Attempt],
        *,
        status: int = 502,
        code: str = "upstream_error",
        error_type: str = "api_error",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, status=status, code=code, error_type=error_type, retry_after=retry_after
        )
        self.attempts = attempts
        if retry_after is not None:
            # any status: "no healthy deployment" says when one is tried again, too
            self.headers["retry-after"] = retry_after_header(retry_after)
