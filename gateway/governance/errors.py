"""The refusals governance answers with (OpenAI's envelope and codes)."""

from __future__ import annotations

from providers.errors import InvalidRequest, SwitchboardError


class RateLimited(SwitchboardError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class BudgetExceeded(SwitchboardError):
    status = 429
    type = "rate_limit_error"  # as OpenAI answers an exhausted quota
    code = "budget_exceeded"


class UnsupportedMediaType(InvalidRequest):
    status = 415
    code = "unsupported_media_type"


class OutputCapExceeded(InvalidRequest):
    code = "max_tokens_exceeds_hard_cap"


class StoreDown(SwitchboardError):
    """The shared store did not take a change (or answer a read) the caller needs."""

    status = 503
    type = "api_error"
    code = "store_unavailable"
