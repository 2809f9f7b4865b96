"""The one cheap authenticated call made to each provider: list its models. It costs no
tokens, and it fails exactly as a chat call would on a wrong key, URL or region."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec

from providers.config import (
    AnthropicConfig,
    AzureConfig,
    BedrockConfig,
    GeminiConfig,
    OpenAIConfig,
    ProviderConfig,
)


class Probe(msgspec.Struct, kw_only=True):
    """A GET that needs the provider's credentials. `sign_bedrock`: headers are added by
    AWS Signature V4 just before sending."""

    url: str
    headers: dict[str, str]
    sign_bedrock: BedrockConfig | None = None

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)


def probe_for(config: ProviderConfig) -> Probe | None:
    """None for a provider with no network behind it (`simulated`)."""
    if isinstance(config, OpenAIConfig):
        auth = {"authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        base = config.resolved_base_url.rstrip("/")
        return Probe(url=f"{base}/models", headers={**config.headers, **auth})
    if isinstance(config, AzureConfig):
        auth = {"api-key": config.api_key} if config.api_key else {}
        url = f"{config.endpoint.rstrip('/')}/openai/models?api-version={config.api_version}"
        return Probe(url=url, headers={**config.headers, **auth})
    if isinstance(config, AnthropicConfig):
        auth = {"x-api-key": config.api_key} if config.api_key else {}
        base = config.base_url.rstrip("/").removesuffix("/v1")
        headers = {**config.headers, "anthropic-version": config.anthropic_version, **auth}
        return Probe(url=f"{base}/v1/models", headers=headers)
    if isinstance(config, GeminiConfig):
        auth = {"x-goog-api-key": config.api_key} if config.api_key else {}
        return Probe(
            url=f"{config.base_url.rstrip('/')}/models", headers={**config.headers, **auth}
        )
    if isinstance(config, BedrockConfig):
        # ListFoundationModels lives on the control plane's host, not bedrock-runtime's
        base = config.base_url or f"https://bedrock.{config.region}.amazonaws.com"
        return Probe(url=f"{base.rstrip('/')}/foundation-models", headers={}, sign_bedrock=config)
    return None


def listed_models(body: bytes) -> set[str] | None:
    """The model ids a list answer names (OpenAI, Anthropic, Azure: `data[].id`; Gemini:
    `models[].name` as `models/ID`; Bedrock: `modelSummaries[].modelId`), or None."""
    try:
        document: Any = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if not isinstance(document, dict):
        return None
    for key, field in (("data", "id"), ("models", "name"), ("modelSummaries", "modelId")):
        items = document.get(key)
        if isinstance(items, list):
            return {
                str(item[field]).removeprefix("models/")
                for item in items
                if isinstance(item, dict) and field in item
            }
    return None


async def bedrock_headers(config: BedrockConfig, url: str) -> dict[str, str]:
    """SigV4 headers for a GET of `url` (botocore: the `bedrock` extra)."""
    import asyncio

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from botocore.session import Session

    if config.access_key_id and config.secret_access_key:
        credentials: Any = Credentials(
            config.access_key_id, config.secret_access_key, config.session_token
        )
    else:  # the default chain reads files and may ask the instance metadata service
        credentials = await asyncio.to_thread(Session().get_credentials)
        if credentials is None:
            raise PermissionError("no AWS credentials in the config or the environment")
    request = AWSRequest(method="GET", url=url, headers={})
    SigV4Auth(credentials.get_frozen_credentials(), "bedrock", config.region).add_auth(request)
    return dict(request.headers.items())
