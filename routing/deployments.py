"""Deployments as routing uses them: config, model catalogue and the provider's own
capabilities resolved once, at start-up, into prices and capabilities."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import msgspec

from providers.capabilities import Capabilities, with_overrides
from routing.config import DeploymentConfig, ModelConfig
from routing.model_catalogue import CatalogueEntry, ModelCatalogue


class Prices(msgspec.Struct, frozen=True, kw_only=True):
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float  # what a cached prompt token costs


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """The vendor's limits on a deployment, respected as constraints (None: none)."""

    max_concurrency: int | None = None  # in flight from one replica
    rpm: int | None = None  # requests a minute, every replica's
    tpm: int | None = None  # tokens a minute, every replica's


NO_LIMITS = Limits()


class Deployment(msgspec.Struct, frozen=True, kw_only=True):
    provider: str
    model: str
    prices: Prices
    capabilities: Capabilities
    limits: Limits = NO_LIMITS


class DeploymentError(ValueError):
    """A deployment that cannot be resolved; `str()` is `path: reason`."""


def _prices(path: str, config: DeploymentConfig, entry: CatalogueEntry | None) -> Prices:
    def pick(field: str) -> float | None:
        given: float | None = getattr(config, field)
        return given if given is not None else getattr(entry, field, None)

    input_price, output_price = pick("input_per_mtok"), pick("output_per_mtok")
    for field, value in (("input_per_mtok", input_price), ("output_per_mtok", output_price)):
        if value is None:
            raise DeploymentError(
                f"{path}.{field}: no price set, and the model catalogue has none for "
                f"'{config.model}' on this provider"
            )
    assert input_price is not None and output_price is not None
    cached = pick("cached_input_per_mtok")
    return Prices(
        input_per_mtok=input_price,
        output_per_mtok=output_price,
        cached_input_per_mtok=input_price if cached is None else cached,
    )


def _limits(config: DeploymentConfig) -> Limits:
    if config.max_concurrency is None and config.rpm is None and config.tpm is None:
        return NO_LIMITS
    return Limits(max_concurrency=config.max_concurrency, rpm=config.rpm, tpm=config.tpm)


def resolve_deployments(
    models: Mapping[str, ModelConfig],
    families: Mapping[str, str],
    capabilities: Mapping[str, Callable[[str], Capabilities]],
    catalogue: ModelCatalogue,
) -> dict[str, list[Deployment]]:
    """`families` and `capabilities` are per provider name: its catalogue family (kind or
    preset), and what its API can do for a given model id."""
    resolved: dict[str, list[Deployment]] = {}
    for name, model in models.items():
        deployments = []
        for i, config in enumerate(model.deployments):
            entry = catalogue.lookup(families[config.provider], config.model)
            path = f"models.{name}.deployments[{i}]"
            deployments.append(
                Deployment(
                    provider=config.provider,
                    model=config.model,
                    prices=_prices(path, config, entry),
                    capabilities=with_overrides(
                        capabilities[config.provider](config.model),
                        entry.capabilities if entry else None,
                        config.capabilities,
                    ),
                    limits=_limits(config),
                )
            )
        resolved[name] = deployments
    return resolved
