"""The price of one answer, from the upstream's usage and the deployment's prices."""

from __future__ import annotations

from providers.chat_types import Usage
from routing.deployments import Prices
from routing.metadata import Cost

_PER_TOKEN = 1e-6  # prices are per million tokens


def _usd(amount: float) -> float:
    return round(amount, 10)  # keep float noise (0.00010500000000000001) out of answers


def cost_of(usage: Usage, prices: Prices, *, estimated: bool = False) -> Cost:
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    input_usd = (
        (usage.prompt_tokens - cached) * prices.input_per_mtok
        + cached * prices.cached_input_per_mtok
    ) * _PER_TOKEN
    output_usd = usage.completion_tokens * prices.output_per_mtok * _PER_TOKEN
    return Cost(
        usd=_usd(input_usd + output_usd),
        input_usd=_usd(input_usd),
        output_usd=_usd(output_usd),
        estimated=estimated,
    )
