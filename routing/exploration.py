"""Probing: keep the statistics of deployments routing does not choose true, spending
traffic only where the answer could change the choice.

Each plan, in ranked order, a deployment other than the first is *due* when:
- it could be the best now: re-scored as if it were `optimism` times as slow (and as
  failing) as last measured, where `optimism` halves every `optimism_half_life` seconds
  without news of it (its last outcome, or this replica's last probe of it), it would
  beat the first. So one twice as slow as the best is probed about every half-life, one
  ten times as slow every 3.3, one nearly as good more often (and cheaply). Under `cost`
  nothing is probed for this: prices are known, a dearer deployment cannot turn cheap.
- or it is avoided for its errors, `health_interval` has passed since its last news, and
  it would be preferred were it healthy (under `cost`: it is cheaper than the first).

The first due one is moved to the front, if the budget allows: each plan adds `share` to
it, each probe spends 1, so at most `share` of requests are probes. A probe that is in
flight counts as news, so a deployment is never probed twice at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from routing.config import ExplorationConfig, Strategy
from routing.scoring import Ranking
from routing.stats import DeploymentStats

_BUDGET_CAP = 1.0  # probes saved up: one, so they never come in a burst
_NEVER = float("-inf")


class Explorer:
    """One replica's probing: the budget, and when it last probed each deployment."""

    def __init__(self, config: ExplorationConfig) -> None:
        self._config = config
        self._probed: dict[str, float] = {}
        self._budget = _BUDGET_CAP

    def age(self, deployment: str, stats: DeploymentStats, now: float) -> float:
        """Seconds since the last news of a deployment (inf: none ever)."""
        seen = stats.last_seen if stats.last_seen is not None else _NEVER
        return now - max(seen, self._probed.get(deployment, _NEVER))

    def pick(
        self,
        ids: Sequence[str],
        stats: Sequence[DeploymentStats],
        ranking: Ranking,
        order: Sequence[int],
        avoided: set[int],
        strategy: Strategy,
        now: float,
    ) -> int | None:
        """The position in `order` (the plan's order of candidate indexes) of the
        deployment to probe, or None. `avoided`: indexes failing too often."""
        config = self._config
        if config.share <= 0 or len(order) < 2:
            return None
        self._budget = min(_BUDGET_CAP, self._budget + config.share)
        first = order[0]
        if self._budget < 1 or first in avoided:
            return None  # no budget; or everything fails, and all of it is tried anyway
        best = ranking.values[first]
        for position in range(1, len(order)):
            index = order[position]
            age = self.age(ids[index], stats[index], now)
            healthy = index in avoided  # a health probe: would it win were it healthy?
            if healthy:
                if age < config.health_interval:
                    continue
                optimism = 1.0
            elif strategy == "cost":
                continue
            else:
                optimism = 2.0 ** (-age / config.optimism_half_life)
            if ranking.optimistic(index, optimism, healthy=healthy) < best:
                self._budget -= 1
                self._probed[ids[index]] = now
                return position
        return None
