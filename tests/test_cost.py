from __future__ import annotations

import pytest

from providers.chat_types import PromptTokensDetails, Usage
from routing.cost import cost_of
from routing.deployments import Prices

DEPLOYMENT = Prices(input_per_mtok=0.59, output_per_mtok=0.79, cached_input_per_mtok=0.59)


def test_cost_is_tokens_times_price_per_million() -> None:
    cost = cost_of(Usage(prompt_tokens=1000, completion_tokens=500, total_tokens=1500), DEPLOYMENT)
    assert cost.input_usd == pytest.approx(0.00059)
    assert cost.output_usd == pytest.approx(0.000395)
    assert cost.usd == pytest.approx(0.000985)
    assert cost.estimated is False


def test_cost_has_no_float_noise() -> None:
    deployment = Prices(input_per_mtok=3, output_per_mtok=15, cached_input_per_mtok=3)
    cost = cost_of(Usage(prompt_tokens=14, completion_tokens=7, total_tokens=21), deployment)
    assert cost.usd == 0.000147
    assert repr(cost.usd) == "0.000147"


def test_cached_prompt_tokens_use_the_cached_price() -> None:
    deployment = Prices(input_per_mtok=2.0, output_per_mtok=8.0, cached_input_per_mtok=0.5)
    usage = Usage(
        prompt_tokens=1000,
        completion_tokens=0,
        total_tokens=1000,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=400),
    )
    assert cost_of(usage, deployment).input_usd == pytest.approx((600 * 2.0 + 400 * 0.5) / 1e6)


def test_cached_tokens_at_the_input_price() -> None:
    usage = Usage(prompt_tokens=100, prompt_tokens_details=PromptTokensDetails(cached_tokens=100))
    assert cost_of(usage, DEPLOYMENT).input_usd == pytest.approx(100 * 0.59 / 1e6)


def test_estimated_flag_is_carried() -> None:
    assert cost_of(Usage(), DEPLOYMENT, estimated=True).estimated is True
