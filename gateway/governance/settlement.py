"""The sink that settles admitted requests: each reservation is replaced by the real cost
(streams, client disconnects and failures included), and each tokens-per-minute limit is
corrected by the real usage. Batched: one round trip per delivery, none on a request."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.accounting import RequestRecord
from gateway.governance.ask import Settlement, nano_usd
from gateway.governance.store import GovernanceStore


def settlement_of(record: RequestRecord) -> Settlement | None:
    admitted = record.admitted
    if admitted is None:
        return None
    used = 0
    if record.usage is not None:
        used = record.usage.total_tokens or (
            record.usage.prompt_tokens + record.usage.completion_tokens
        )
    return Settlement(
        hold=admitted.hold,
        shared=admitted.shared,
        buckets=admitted.budgets,
        amount=admitted.nano_usd,
        actual=nano_usd(record.cost_usd),
        tokens=tuple((key, limit, used - admitted.tokens) for key, limit in admitted.token_limits),
    )


class Settler:
    name = "settlement"

    def __init__(self, store: GovernanceStore) -> None:
        self._store = store

    async def deliver(self, records: Sequence[RequestRecord]) -> None:
        settlements = [s for r in records if (s := settlement_of(r)) is not None]
        if settlements:
            await self._store.settle(settlements)
