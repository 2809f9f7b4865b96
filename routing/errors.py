"""Routing's client-facing errors."""

from __future__ import annotations

import msgspec

from providers.errors import (
    ErrorBody,
    ErrorEnvelope,
    InvalidRequest,
    NotFound,
    ProviderError,
    retry_after_header,
)
from routing.metadata import Attempt


class ModelNotFound(NotFound):
    code = "model_not_found"


class NoCandidate(InvalidRequest):
    code = "no_candidate"


class RoutingErrorBody(ErrorBody):
    """OpenAI's error object, plus every failed try as data (DESIGN, Errors)."""

    attempts: list[Attempt] = msgspec.field(default_factory=list)


_encoder = msgspec.json.Encoder()


class RoutingFailed(ProviderError):
    """No deployment answered. The envelope stays OpenAI's (message, type, code, param);
    the message lists every failed attempt for people, and the error object carries them
    as data in `attempts`, the shape of `routing_metadata.attempts`."""

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

    def envelope(self) -> ErrorEnvelope:
        return ErrorEnvelope(
            RoutingErrorBody(self.message, self.type, self.param, self.code, self.attempts)
        )

    def to_json(self) -> bytes:
        return _encoder.encode(self.envelope())
