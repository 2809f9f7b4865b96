from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

Seconds = Annotated[float, Meta(gt=0)]


class OpenAIConfig(
    msgspec.Struct, tag="openai", tag_field="kind", kw_only=True, forbid_unknown_fields=True
):
    base_url: Annotated[str, Meta(pattern=r"^https?://")]
    api_key: str | None = None
    timeout: Seconds = 60.0  # whole non-streaming attempt
    connect_timeout: Seconds = 5.0
    read_timeout: Seconds | None = None  # silence allowed mid-stream; defaults to `timeout`
    max_connections: Annotated[int, Meta(ge=1)] = 1000
    headers: dict[str, str] = {}

    def __repr__(self) -> str:
        # the key must never reach a log line, even through a repr
        return f"OpenAIConfig(base_url={self.base_url!r}, api_key=<hidden>)"
