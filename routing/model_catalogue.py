"""The shipped model catalogue: list prices and capabilities of common models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
from msgspec import Meta

from providers.capabilities import CapabilityOverrides

CATALOGUE_FILE = Path(__file__).with_name("model_catalogue.yaml")
Price = Annotated[float, Meta(ge=0)]


class CatalogueEntry(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    family: str  # a provider kind, or an OpenAI-compatible preset
    model: str  # the provider's own model id
    input_per_mtok: Price
    output_per_mtok: Price
    cached_input_per_mtok: Price | None = None
    capabilities: CapabilityOverrides | None = None


class CatalogueFile(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    checked: str  # when the prices were last compared with the vendors' pages
    models: list[CatalogueEntry]


class ModelCatalogue:
    def __init__(self, entries: list[CatalogueEntry], checked: str = "") -> None:
        self.checked = checked
        self._index = {(entry.family, entry.model): entry for entry in entries}

    def lookup(self, family: str, model: str) -> CatalogueEntry | None:
        return self._index.get((family, model))


def load_catalogue(path: Path = CATALOGUE_FILE) -> ModelCatalogue:
    shipped = msgspec.yaml.decode(path.read_bytes(), type=CatalogueFile)
    return ModelCatalogue(shipped.models, shipped.checked)
