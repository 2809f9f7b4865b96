"""What the app holds while it runs: built from the config, closed at shutdown."""

from __future__ import annotations

import asyncio

from gateway.auth import Authenticator
from gateway.config import AuthConfig, Config
from providers.base import Provider
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

    async def aclose(self) -> None:
        await asyncio.gather(*(provider.aclose() for provider in self.providers.values()))
