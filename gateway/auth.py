"""Gateway keys: clients send them as `Authorization: Bearer` or `X-Api-Key`; the config
holds only their SHA-256 hashes."""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
from collections.abc import Mapping

import msgspec

from gateway.config import AdminConfig, AuthConfig, GatewayKey
from providers.errors import AuthenticationFailed, PermissionDenied


class Caller(msgspec.Struct, frozen=True):
    name: str
    allowed_models: tuple[str, ...]

    def allows(self, model: str) -> bool:
        return "*" in self.allowed_models or any(
            fnmatch.fnmatchcase(model, pattern) for pattern in self.allowed_models
        )


ANONYMOUS = Caller(name="anonymous", allowed_models=("*",))


def _presented_key(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    api_key = headers.get("x-api-key")
    return api_key.strip() if api_key and api_key.strip() else None


class Authenticator:
    def __init__(self, config: AuthConfig | None) -> None:
        # None means `auth: none`, which the config must say explicitly
        self._open = config is None
        self._by_hash: dict[str, GatewayKey] = (
            {key.key_sha256.lower(): key for key in config.keys} if config else {}
        )
        self._callers = {
            digest: Caller(name=key.name, allowed_models=tuple(key.allowed_models))
            for digest, key in self._by_hash.items()
        }

    def authenticate(self, headers: Mapping[str, str]) -> Caller:
        if self._open:
            return ANONYMOUS
        key = _presented_key(headers)
        if key is None:
            raise AuthenticationFailed(
                "Missing API key: send it as 'Authorization: Bearer <key>' or 'X-Api-Key'."
            )
        caller = self._callers.get(hashlib.sha256(key.encode()).hexdigest())
        if caller is None:
            raise AuthenticationFailed("Incorrect API key provided.")
        return caller


class AdminAuthenticator:
    """The admin key guards `/v1/admin/...`, whatever `auth` says: even an open demo
    gateway does not let anyone change its prices."""

    def __init__(self, config: AdminConfig | None) -> None:
        self._digest = config.key_sha256.lower() if config else None

    def authenticate(self, headers: Mapping[str, str]) -> None:
        if self._digest is None:
            raise PermissionDenied(
                "Admin endpoints are off: set admin.key_sha256 in the config.",
                code="admin_disabled",
            )
        key = _presented_key(headers)
        if key is None:
            raise AuthenticationFailed("Missing admin key: send it as 'Authorization: Bearer'.")
        if not hmac.compare_digest(hashlib.sha256(key.encode()).hexdigest(), self._digest):
            raise AuthenticationFailed("Incorrect admin key provided.")
