from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from providers.connection import ConnectionOptions, Seconds

# Anthropic refuses a thinking budget under 1,024 tokens
ThinkingBudget = Annotated[int, Meta(ge=1024)]

DEFAULT_THINKING_BUDGETS: dict[str, int] = {
    "minimal": 1024,
    "low": 1024,
    "medium": 4096,
    "high": 16384,
}


class AnthropicConfig(
    ConnectionOptions, tag="anthropic", tag_field="kind", kw_only=True, forbid_unknown_fields=True
):
    base_url: Annotated[str, Meta(pattern=r"^https?://")] = "https://api.anthropic.com"
    api_key: str | None = None
    anthropic_version: str = "2023-06-01"
    # whole non-streaming attempt: a few thousand tokens take a minute or more to generate
    timeout: Seconds = 300.0
    # Anthropic requires `max_tokens`; this is sent when the client set no limit
    default_max_tokens: Annotated[int, Meta(ge=1)] = 4096
    # OpenAI `reasoning_effort` → extended thinking `budget_tokens`
    thinking_budgets: dict[str, ThinkingBudget] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_THINKING_BUDGETS)
    )

    def __repr__(self) -> str:
        # the key must never reach a log line, even through a repr
        return f"AnthropicConfig(base_url={self.base_url!r}, api_key=<hidden>)"
