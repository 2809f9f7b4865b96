"""Build the adapter a provider's config asks for."""

from __future__ import annotations

from providers.anthropic.adapter import AnthropicProvider
from providers.azure.adapter import AzureOpenAIProvider
from providers.azure.config import AzureConfig
from providers.base import Provider
from providers.bedrock.adapter import BedrockProvider
from providers.bedrock.config import BedrockConfig
from providers.config import AnthropicConfig, OpenAIConfig, ProviderConfig, SimulatedConfig
from providers.gemini.adapter import GeminiProvider
from providers.gemini.config import GeminiConfig
from providers.openai.adapter import OpenAIProvider
from providers.simulated.adapter import SimulatedProvider


def build_provider(name: str, config: ProviderConfig) -> Provider:
    if isinstance(config, AnthropicConfig):
        return AnthropicProvider(name, config)
    if isinstance(config, AzureConfig):
        return AzureOpenAIProvider(name, config)
    if isinstance(config, OpenAIConfig):
        return OpenAIProvider(name, config)
    if isinstance(config, SimulatedConfig):
        return SimulatedProvider(name, config)
    if isinstance(config, GeminiConfig):
        return GeminiProvider(name, config)
    if isinstance(config, BedrockConfig):
        return BedrockProvider(name, config)
    raise TypeError(f"no adapter for provider config {type(config).__name__}")
