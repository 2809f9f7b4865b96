"""Provider configuration: a union tagged on `kind`."""

from __future__ import annotations

from providers.openai.config import OpenAIConfig
from providers.simulated.config import SimulatedConfig

ProviderConfig = OpenAIConfig | SimulatedConfig

__all__ = ["OpenAIConfig", "ProviderConfig", "SimulatedConfig"]
