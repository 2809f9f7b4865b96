from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

NonNegative = Annotated[float, Meta(ge=0)]


class SimulatedConfig(
    msgspec.Struct, tag="simulated", tag_field="kind", kw_only=True, forbid_unknown_fields=True
):
    ttft_ms: NonNegative = 0.0
    tokens_per_second: NonNegative = 0.0  # 0 streams every token at once
    completion_tokens: Annotated[int, Meta(ge=1)] = 16
    failure_rate: Annotated[float, Meta(ge=0, le=1)] = 0.0
    failure_status: Annotated[int, Meta(ge=400, le=599)] = 503
    text: str = "This is a simulated answer from Switchboard."
    seed: int | None = None  # fixes the failure draws, for tests and demos
    # the size of embeddings when a request sets no `dimensions`
    embedding_dimensions: Annotated[int, Meta(ge=1, le=65536)] = 1536
