"""The sink that settles admitted requests: each reservation is replaced by the real cost
(streams, client disconnects and failures included), and each tokens-per-minute limit is
corrected by the real usage. Batched: one round trip per delivery, none on a request."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.accounting import RequestRecord
from gateway.governance.ask import Settlement, nano_usd
from gateway.governance.ledger import ledger_batch
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
        actual=nano_usd(record.cost_usd),
        tokens=tuple((key, limit, used - admitted.tokens) for key, limit in admitted.token_limits),
    )


class Settler:
    """Settlements, the ledger and the keys' last use: one store write per delivery."""

    name = "settlement"

    def __init__(self, store: GovernanceStore) -> None:
        self._store = store

    async def deliver(self, records: Sequence[RequestRecord]) -> None:
        settlements = [s for r in records if (s := settlement_of(r)) is not None]
        used = {r.key: r.started_at for r in records if r.key is not None}
        ledger = ledger_batch(records)
        if settlements or ledger or used:
            await self._store.settle(settlements, ledger, used)
