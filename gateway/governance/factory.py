"""The governance store named by the config's `store:` URL (the same one routing uses)."""

from __future__ import annotations

from gateway.governance.config import GovernanceConfig
from gateway.governance.store import GovernanceStore


def open_governance_store(url: str, config: GovernanceConfig) -> GovernanceStore:
    """Nothing connects here; a Redis store that is down at start serves degraded."""
    if url.startswith("memory://"):
        return GovernanceStore(ledger_days=config.ledger_retention_days)
    from gateway.governance.redis_store import RedisGovernanceStore

    return RedisGovernanceStore(url, ledger_days=config.ledger_retention_days)
