"""Exploration: keep every deployment's statistics true.

Without it, a deployment that was slow once would never be tried again and its numbers
would never recover. Policy: a deployment whose window holds fewer than `min_samples`
requests, or that has not been seen for `stale_after` seconds, is *unexplored*. On a
`share` of requests (a draw from the injected random source, so tests fix it with a seed)
one unexplored deployment, chosen at random, is moved to the front of the plan. At most
`share` of the traffic is spent this way, and none when every deployment has fresh data.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from routing.config import ExplorationConfig
from routing.stats import DeploymentStats


def unexplored(stats: DeploymentStats, config: ExplorationConfig, now: float) -> bool:
    if stats.requests < config.min_samples or stats.last_seen is None:
        return True
    return now - stats.last_seen > config.stale_after


def pick_exploration(
    stats: Sequence[DeploymentStats],
    config: ExplorationConfig,
    draw: random.Random,
    now: float,
) -> int | None:
    """The index (never 0, already first) of a deployment to try first, or None."""
    if len(stats) < 2 or config.share <= 0 or draw.random() >= config.share:
        return None
    choices = [i for i in range(1, len(stats)) if unexplored(stats[i], config, now)]
    return draw.choice(choices) if choices else None
