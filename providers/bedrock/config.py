from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from providers.anthropic.config import DEFAULT_THINKING_BUDGETS, ThinkingBudget
from providers.bedrock.extra import require_botocore
from providers.connection import ConnectionOptions, Seconds

# OpenAI `reasoning_effort` → Claude's thinking `budget_tokens`: the `anthropic` kind's
# defaults, so one model answers alike through either provider


class BedrockConfig(
    ConnectionOptions, tag="bedrock", tag_field="kind", kw_only=True, forbid_unknown_fields=True
):
    region: Annotated[str, Meta(pattern=r"^[a-z]+(-[a-z]+)+-\d+$")]  # e.g. us-east-1
    # None: the region's public endpoint (see `endpoint`); set it for a VPC endpoint or a test
    base_url: Annotated[str, Meta(pattern=r"^https?://")] | None = None
    # None for both: botocore's default credential chain (environment, shared config
    # files, container or instance role), resolved at the first request
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None  # with temporary (STS) credentials
    # whole non-streaming attempt: a few thousand tokens take a minute or more to generate
    timeout: Seconds = 300.0
    # Claude's thinking needs a token limit; this one is sent when the client set none
    default_max_tokens: Annotated[int, Meta(ge=1)] = 4096
    thinking_budgets: dict[str, ThinkingBudget] = msgspec.field(
        default_factory=lambda: dict(DEFAULT_THINKING_BUDGETS)
    )

    def __post_init__(self) -> None:
        # ValueErrors here reach the operator as config errors naming this provider
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key must be set together")
        if self.session_token is not None and self.access_key_id is None:
            raise ValueError("session_token needs access_key_id and secret_access_key")
        require_botocore()

    @property
    def endpoint(self) -> str:
        base = self.base_url or f"https://bedrock-runtime.{self.region}.amazonaws.com"
        return base.rstrip("/")

    def __repr__(self) -> str:
        # credentials must never reach a log line, even through a repr
        return (
            f"BedrockConfig(region={self.region!r}, base_url={self.base_url!r}, "
            "access_key_id=<hidden>, secret_access_key=<hidden>, session_token=<hidden>)"
        )
