"""Which deployments can serve a requested model name."""

from __future__ import annotations

import msgspec

from routing.config import Strategy
from routing.deployments import Deployment
from routing.errors import ModelNotFound

# OpenRouter's model suffixes: cheapest first, or fastest first
_SUFFIX_STRATEGY: dict[str, Strategy] = {":floor": "cost", ":nitro": "latency"}


class ResolvedModel(msgspec.Struct, frozen=True, kw_only=True):
    canonical: str
    deployments: list[Deployment]
    strategy: Strategy | None = None  # set by a `:floor` / `:nitro` suffix


class ModelResolver:
    def __init__(self, models: dict[str, list[Deployment]]) -> None:
        self._models = models
        # names resolve the same way every time: a request pays a dict lookup. Only names
        # that resolve are kept, so the cache is bounded by the config, not by clients.
        self._resolved: dict[str, ResolvedModel] = {}

    @property
    def models(self) -> dict[str, list[Deployment]]:
        return self._models

    def resolve(self, name: str) -> ResolvedModel:
        """`llama-3.3-70b`, `groq/llama-3.3-70b` (pins that provider), `llama-3.3-70b:floor`."""
        resolved = self._resolved.get(name)
        if resolved is None:
            resolved = self._resolved[name] = self._resolve(name)
        return resolved

    def _resolve(self, name: str) -> ResolvedModel:
        strategy: Strategy | None = None
        base = name
        for suffix, suffix_strategy in _SUFFIX_STRATEGY.items():
            if name.endswith(suffix):
                base, strategy = name[: -len(suffix)], suffix_strategy
                break
        model = self._models.get(base)
        if model is not None:
            return ResolvedModel(canonical=base, deployments=model, strategy=strategy)
        provider, sep, canonical = base.partition("/")
        model = self._models.get(canonical) if sep else None
        if model is not None:
            pinned = [d for d in model if d.provider == provider]
            if pinned:
                return ResolvedModel(canonical=canonical, deployments=pinned, strategy=strategy)
            raise ModelNotFound(
                f"The model '{canonical}' has no deployment on provider '{provider}'.",
                param="model",
            )
        raise ModelNotFound(f"The model '{name}' does not exist.", param="model")
