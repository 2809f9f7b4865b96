"""Provider configuration: a union tagged on `kind`."""

from __future__ import annotations

from providers.anthropic.config import AnthropicConfig
from providers.azure.config import AzureConfig
from providers.bedrock.config import BedrockConfig
from providers.gemini.config import GeminiConfig
from providers.openai.config import OpenAIConfig
from providers.simulated.config import SimulatedConfig

ProviderConfig = (
    AnthropicConfig | OpenAIConfig | SimulatedConfig | AzureConfig | GeminiConfig | BedrockConfig
)

__all__ = [
    "AnthropicConfig",
    "AzureConfig",
    "BedrockConfig",
    "GeminiConfig",
    "OpenAIConfig",
    "ProviderConfig",
    "SimulatedConfig",
]
