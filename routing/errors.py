"""Routing's client-facing errors."""

from __future__ import annotations

from providers.errors import InvalidRequest, NotFound


class ModelNotFound(NotFound):
    code = "model_not_found"


class NoCandidate(InvalidRequest):
    code = "no_candidate"
