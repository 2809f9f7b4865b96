"""What the app holds while it runs: built from the config, closed at shutdown."""

from __future__ import annotations

import asyncio

from gateway.auth import Authenticator, Caller
from gateway.config import AuthConfig, Config
from providers.base import Provider
from providers.errors import PermissionDenied
from providers.registry import build_provider
from routing.catalog import Catalog
from routing.router import Router


class Services:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.providers: dict[str, Provider] = {
            name: build_provider(name, provider) for name, provider in config.providers.items()
        }
        self.catalog = Catalog(config.models)
        self.router = Router(self.providers, self.catalog, config.routing)
        self.auth = Authenticator(config.auth if isinstance(config.auth, AuthConfig) else None)

    def model_allowed(self, caller: Caller, name: str) -> bool:
        """A key's `allowed_models` patterns match the name as sent or its canonical model
        (so `llama-*` also admits `groq/llama-3.3-70b` and `llama-3.3-70b:floor`)."""
        return caller.allows(name) or caller.allows(self.catalog.resolve(name).canonical)

    def check_model_allowed(self, caller: Caller, name: str) -> None:
        if not self.model_allowed(caller, name):
            raise PermissionDenied(
                f"The key '{caller.name}' may not use the model '{name}'.", param="model"
            )

    async def aclose(self) -> None:
        await asyncio.gather(*(provider.aclose() for provider in self.providers.values()))
