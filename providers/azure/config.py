from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from providers.openai.config import HttpURL, UpstreamOptions

# the latest generally available data-plane inference version (Azure OpenAI REST API
# reference, "API specs" table); previews are dated too and end in "-preview"
DEFAULT_API_VERSION = "2024-10-21"
ApiVersion = Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}(-preview)?$")]


class AzureConfig(
    UpstreamOptions, tag="azure", tag_field="kind", kw_only=True, forbid_unknown_fields=True
):
    """One Azure OpenAI resource; each deployment's `model` is the Azure deployment name."""

    endpoint: HttpURL  # https://<resource>.openai.azure.com
    api_version: ApiVersion = DEFAULT_API_VERSION
    api_key: str | None = None  # sent as `api-key`; Entra ID tokens go in `headers`

    def __repr__(self) -> str:
        # the key must never reach a log line, even through a repr
        return (
            f"AzureConfig(endpoint={self.endpoint!r}, api_version={self.api_version!r}, "
            "api_key=<hidden>)"
        )
