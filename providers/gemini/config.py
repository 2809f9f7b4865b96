from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from providers.connection import ConnectionOptions, Seconds

# 0 turns thinking off (where the model allows it); -1 lets the model decide
ThinkingBudget = Annotated[int, Meta(ge=-1)]

# OpenAI `reasoning_effort` → `thinkingBudget`: the table Google's own OpenAI-compatible
# endpoint documents for Gemini 2.5 ("none" switches thinking off)
DEFAULT_THINKING_BUDGETS: dict[str, int] = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
}


class GeminiConfig(
    ConnectionOptions, tag="gemini", tag_field="kind", kw_only=True, forbid_unknown_fields=True
):
    base_url: Annotated[str, Meta(pattern=r"^https?://")] = (
        "https://generativelanguage.googleapis.com/v1beta"
    )
    api_key: str | None = None
    # whole non-streaming attempt: thinking models take a while before the first token
    timeout: Seconds = 300.0
    thinking_budgets: dict[str, ThinkingBudget] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_THINKING_BUDGETS)
    )

    def __repr__(self) -> str:
        # the key must never reach a log line, even through a repr
        return f"GeminiConfig(base_url={self.base_url!r}, api_key=<hidden>)"
