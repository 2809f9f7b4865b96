"""Upstream HTTP failures of OpenAI-compatible APIs."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from providers.errors import ProviderError, error_for_status
from providers.openai.wire import UpstreamErrorDetail, error_decoder


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from OpenAI's `retry-after-ms` or `Retry-After` (delta-seconds form)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(float(value) * scale, 0.0)
        except ValueError:
            continue  # an HTTP date: rare from LLM APIs; the default cooldown applies
    return None


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
        retry_after=parse_retry_after(headers),
        param=detail.param,
        code=detail.code if isinstance(detail.code, str) else None,
    )
