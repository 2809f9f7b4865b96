"""Build the adapter a provider's config asks for."""

from __future__ import annotations

from providers.base import Provider
from providers.config import OpenAIConfig, ProviderConfig, SimulatedConfig
from providers.openai.adapter import OpenAIProvider
from providers.simulated.adapter import SimulatedProvider


def build_provider(name: str, config: ProviderConfig) -> Provider:
    if isinstance(config, OpenAIConfig):
        return OpenAIProvider(name, config)
    if isinstance(config, SimulatedConfig):
        return SimulatedProvider(name, config)
    raise TypeError(f"no adapter for provider config {type(config).__name__}")
