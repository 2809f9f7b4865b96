"""AWS Signature Version 4 for Bedrock requests, by botocore (service name `bedrock`).

The signature covers the method, the URL path as sent, the signed headers and a SHA-256
of the body, so the adapter signs the exact bytes and URL it then sends, once per attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from providers.errors import UpstreamAuthFailed

SERVICE = "bedrock"


def model_path(model_id: str, operation: str) -> str:
    """`/model/{modelId}/{operation}` with the model id percent-encoded as botocore
    encodes it (`:` as `%3A`, `/` in ARNs as `%2F`); the HTTP client sends it unchanged."""
    return f"/model/{quote(model_id, safe='-._~')}/{operation}"


class BedrockSigner:
    """Signs with the configured keys, or with botocore's default credential chain
    (environment, shared config files, container or instance role) when none are set."""

    def __init__(
        self,
        provider: str,
        region: str,
        access_key_id: str | None,
        secret_access_key: str | None,
        session_token: str | None,
    ) -> None:
        # botocore is the `bedrock` extra: imported only once a bedrock provider exists
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        self._provider = provider
        self._region = region
        self._sigv4 = SigV4Auth
        self._request = AWSRequest
        self._credentials: Any = (
            Credentials(access_key_id, secret_access_key, session_token)
            if access_key_id is not None and secret_access_key is not None
            else None
        )
        self._resolve_lock = asyncio.Lock()

    async def sign(self, url: str, body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        """`headers` plus X-Amz-Date, X-Amz-Security-Token (temporary credentials) and
        Authorization, for a POST of `body` to `url`."""
        credentials = await self._frozen_credentials()
        request = self._request(method="POST", url=url, data=body, headers=dict(headers))
        self._sigv4(credentials, SERVICE, self._region).add_auth(request)
        return dict(request.headers.items())

    async def _frozen_credentials(self) -> Any:
        credentials = self._credentials
        if credentials is None:
            credentials = await self._resolve_chain()
        refresh_needed = getattr(credentials, "refresh_needed", None)
        if refresh_needed is not None and refresh_needed():
            # temporary credentials due for renewal: the refresh is a blocking HTTP call
            return await asyncio.to_thread(credentials.get_frozen_credentials)
        return credentials.get_frozen_credentials()

    async def _resolve_chain(self) -> Any:
        async with self._resolve_lock:
            if self._credentials is None:
                # reading files and asking the instance metadata service block: not here
                self._credentials = await asyncio.to_thread(_default_chain_credentials)
            if self._credentials is None:
                raise UpstreamAuthFailed(
                    f"{self._provider}: no AWS credentials: set access_key_id and "
                    "secret_access_key, or provide them the way AWS SDKs look for them "
                    "(environment, shared config files, an instance or container role)",
                    provider=self._provider,
                )
            return self._credentials


def _default_chain_credentials() -> Any:
    from botocore.session import Session

    return Session().get_credentials()
