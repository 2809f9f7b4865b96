from __future__ import annotations

from typing import Any

import pytest

from gateway.config import ConfigError, parse_config
from gateway.services import Services
from routing.model_catalogue import load_catalogue

KNOWN_FAMILIES = {
    "openai",
    "anthropic",
    "gemini",
    "bedrock",
    "azure",
    "groq",
    "together",
    "deepseek",
    "mistral",
    "fireworks",
    "openrouter",
    "xai",
    "perplexity",
    "vllm",
    "ollama",
}


def config_with(deployment: dict[str, Any]) -> dict[str, Any]:
    return {
        "auth": "none",
        "providers": {"oai": {"kind": "openai", "base_url": "https://api.openai.com/v1"}},
        "models": {"chat": {"deployments": [{"provider": "oai", **deployment}]}},
    }


def test_the_shipped_catalogue_loads_and_names_known_families() -> None:
    catalogue = load_catalogue()
    assert catalogue.checked
    entry = catalogue.lookup("openai", "gpt-4o-mini")
    assert entry is not None and entry.output_per_mtok > entry.input_per_mtok > 0
    assert {e.family for e in catalogue._index.values()} <= KNOWN_FAMILIES


def test_a_deployment_without_prices_takes_the_catalogue_ones() -> None:
    services = Services(parse_config(config_with({"model": "gpt-4o-mini"})))
    deployment = services.models.models["chat"][0]
    assert deployment.prices.input_per_mtok == 0.15
    assert deployment.prices.output_per_mtok == 0.60
    assert deployment.prices.cached_input_per_mtok == 0.075
    assert deployment.capabilities.context_window == 128000


def test_config_prices_and_capabilities_override_the_catalogue() -> None:
    config = config_with(
        {
            "model": "gpt-4o-mini",
            "output_per_mtok": 0.5,
            "capabilities": {"vision": False, "context_window": 8000},
        }
    )
    deployment = Services(parse_config(config)).models.models["chat"][0]
    assert deployment.prices.input_per_mtok == 0.15  # from the catalogue
    assert deployment.prices.output_per_mtok == 0.5  # from the config
    assert deployment.capabilities.vision is False
    assert deployment.capabilities.context_window == 8000
    assert deployment.capabilities.tools is True  # the provider's own default


def test_an_unpriced_unknown_model_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(ConfigError) as raised:
        Services(parse_config(config_with({"model": "my-finetune"})))
    assert str(raised.value).startswith("models.chat.deployments[0].input_per_mtok: no price")


def test_a_bad_capability_override_names_its_path() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(config_with({"model": "x", "capabilities": {"telepathy": True}}))
    assert str(raised.value).startswith("models.chat.deployments[0].capabilities")
