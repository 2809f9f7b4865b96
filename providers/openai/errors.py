"""Upstream HTTP failures of OpenAI-compatible APIs."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from providers.errors import ProviderError, error_for_status, retry_after_seconds
from providers.openai.wire import UpstreamErrorDetail, error_decoder


def _detail(body: bytes) -> UpstreamErrorDetail:
    try:
        return error_decoder.decode(body).summary()
    except (msgspec.DecodeError, msgspec.ValidationError):
        return UpstreamErrorDetail()


def classify_status(
    status: int, headers: Mapping[str, str], body: bytes, provider: str
) -> ProviderError:
    detail = _detail(body)
    return error_for_status(
        status,
        f"{provider}: {detail.message or f'HTTP {status}'}",
        provider=provider,
        retry_after=retry_after_seconds(headers),
        param=detail.param,
        code=detail.code if isinstance(detail.code, str) else None,
    )
