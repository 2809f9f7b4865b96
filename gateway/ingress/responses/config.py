"""The `responses:` section of the config: the gateway's own keeping of responses."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta


class ResponsesConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How the gateway keeps the Responses API answers of deployments without a Responses
    API of their own, so that `previous_response_id` can continue them. They live in the
    store named by the top-level `store:` (memory, or the Redis every replica shares)."""

    store: Annotated[
        bool,
        Meta(
            description="Keep responses at all. Off: `previous_response_id` works only on "
            "deployments that speak the Responses API (OpenAI, Azure), which keep their own."
        ),
    ] = True
    retention: Annotated[
        float,
        Meta(
            gt=0,
            description="Seconds a kept response can be continued (OpenAI keeps its own "
            "for 30 days).",
        ),
    ] = 86_400.0
    memory_max_bytes: Annotated[
        int,
        Meta(
            ge=1_000_000,
            description="Memory store: the most bytes of kept responses; the oldest are "
            "evicted first.",
        ),
    ] = 64_000_000
    pending_max_bytes: Annotated[
        int,
        Meta(
            ge=1_000_000,
            description="Redis store: the most bytes of responses waiting to be written "
            "(while Redis is unreachable); beyond it the oldest are given up, with a warning.",
        ),
    ] = 64_000_000
