"""Azure OpenAI: the OpenAI adapter's forwarding under Azure's addressing.

Azure answers in OpenAI's shapes (errors too: a prompt its content filter blocks is a
400 with `code: content_filter`, kept as the client's rejected request), so only the URL
and the credentials differ. Its streams open with a chunk that has no choices, only
`prompt_filter_results`; the shared stream reader passes no such chunk on.
"""

from __future__ import annotations

from urllib.parse import quote

from providers.azure.config import AzureConfig
from providers.base import ProviderCall
from providers.openai.adapter import OpenAIWireProvider
from providers.openai.completions import OpenAICompletions
from providers.openai.embeddings import OpenAIEmbeddings
from providers.openai.presets import ForwardingProfile
from providers.openai.responses import ResponsesAPI


class AzureOpenAIProvider(OpenAIWireProvider):
    # `extensions.azure` is merged into the body; `extensions.openai` is OpenAI's own
    extension = "azure"
    # Azure's own correlation header, which its diagnostics and support look up
    request_id_headers = ("x-request-id", "x-ms-client-request-id")

    def __init__(self, name: str, config: AzureConfig) -> None:
        credentials = {"api-key": config.api_key} if config.api_key else {}
        profile = config.profile_over(ForwardingProfile(responses_api=True))
        super().__init__(name, config, profile, credentials)
        self._endpoint = config.endpoint.rstrip("/")
        self._api_version = quote(config.api_version, safe="")
        self._urls: dict[tuple[str, str], str] = {}
        self.embeddings = OpenAIEmbeddings(
            name,
            self._http,
            self._headers,
            lambda model: self.operation_url(model, "embeddings"),
            self.extension,
        )
        if profile.responses_api:
            # the v1 API (GA since August 2025): no deployment in the path and no
            # api-version; the deployment name goes in the body's `model`
            url = f"{self._endpoint}/openai/v1/responses"
            self.responses = ResponsesAPI(name, self._http, self._headers, url, self.extension)
        self.legacy_completions = OpenAICompletions(
            name,
            self._http,
            self._headers,
            lambda model: self.operation_url(model, "completions"),
            self.extension,
            stream_usage=self.profile.stream_usage,
        )

    def url_for(self, call: ProviderCall) -> str:
        return self.operation_url(call.model, "chat/completions")

    def operation_url(self, deployment: str, operation: str) -> str:
        """`operation` (`chat/completions`, `embeddings`, ...) of one Azure deployment.
        The deployment is in the path; the body's `model` (kept, as the openai SDK's
        AzureOpenAI client sends it too) is ignored by Azure."""
        url = self._urls.get((deployment, operation))
        if url is None:
            url = (
                f"{self._endpoint}/openai/deployments/{quote(deployment, safe='')}"
                f"/{operation}?api-version={self._api_version}"
            )
            self._urls[(deployment, operation)] = url
        return url
