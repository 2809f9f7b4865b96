"""Gateway keys: clients send them as `Authorization: Bearer` or `X-Api-Key`; the gateway
knows only their SHA-256 hashes (from the config file, and from the store's keys in the
snapshot `replace_stored` installs), so authenticating reads memory, never Redis.

A presented key is hashed and looked up by its digest, then the digest compared with
`hmac.compare_digest`: the lookup's timing depends only on the digest of what the client
sent, which tells it nothing about any stored key.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

import msgspec

from gateway.config import AdminConfig
from gateway.governance.config import AuthConfig, GatewayKey, Limits, TeamConfig
from gateway.governance.periods import PERIODS, Period
from providers.errors import AuthenticationFailed, PermissionDenied


class RateLimit(msgspec.Struct, frozen=True, array_like=True):
    scope: str  # `key:<name>` or `team:<name>`
    kind: Literal["rpm", "tpm"]
    limit: int


class BudgetLimit(msgspec.Struct, frozen=True, array_like=True):
    scope: str  # `key:<name>`, `team:<name>` or `all`
    period: Period
    usd: float


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    """Who sent a request, with everything admission needs to know about it."""

    name: str
    allowed_models: tuple[str, ...] = ("*",)
    team: str | None = None
    team_models: tuple[str, ...] = ("*",)  # the team's `allowed_models`: both must admit
    rates: tuple[RateLimit, ...] = ()
    budgets: tuple[BudgetLimit, ...] = ()
    expires_at: float | None = None  # epoch seconds
    digest: str = ""  # the key's SHA-256 (hex)

    def allows(self, *names: str) -> bool:
        """Whether both the key's and its team's patterns admit one of these names (the
        model as sent, its canonical name)."""
        if names and self.unrestricted:
            return True  # asked on every request: no generators for the common case
        return any(_matches(self.allowed_models, n) for n in names) and any(
            _matches(self.team_models, n) for n in names
        )

    @property
    def unrestricted(self) -> bool:
        """Every model allowed (`*` for the key and its team): most keys, and `auth: none`."""
        return "*" in self.allowed_models and "*" in self.team_models

    @property
    def rate_limited(self) -> bool:
        return bool(self.rates)


def _matches(patterns: tuple[str, ...], model: str) -> bool:
    return "*" in patterns or any(fnmatch.fnmatchcase(model, p) for p in patterns)


ANONYMOUS = Caller(name="anonymous")


def limits_of(scope: str, limits: Limits) -> tuple[list[RateLimit], list[BudgetLimit]]:
    rates = []
    if limits.rpm is not None:
        rates.append(RateLimit(scope, "rpm", limits.rpm))
    if limits.tpm is not None:
        rates.append(RateLimit(scope, "tpm", limits.tpm))
    budgets = []
    if limits.budget_usd is not None:
        for period in PERIODS:
            usd = getattr(limits.budget_usd, period)
            if usd is not None:
                budgets.append(BudgetLimit(scope, period, usd))
    return rates, budgets


def caller_for(key: GatewayKey, team: TeamConfig | None) -> Caller:
    rates, budgets = limits_of(f"key:{key.name}", key)
    if team is not None:
        team_rates, team_budgets = limits_of(f"team:{team.name}", team)
        rates += team_rates
        budgets += team_budgets
    return Caller(
        name=key.name,
        allowed_models=tuple(key.allowed_models),
        team=key.team,
        team_models=tuple(team.allowed_models) if team is not None else ("*",),
        rates=tuple(rates),
        budgets=tuple(budgets),
        expires_at=key.expires_at.timestamp() if key.expires_at is not None else None,
        digest=key.key_sha256.lower(),
    )


def _presented_key(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    api_key = headers.get("x-api-key")
    return api_key.strip() if api_key and api_key.strip() else None


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Authenticator:
    def __init__(
        self, config: AuthConfig | None, *, clock: Callable[[], float] = time.time
    ) -> None:
        # None means `auth: none`, which the config must say explicitly
        self._open = config is None
        self._clock = clock
        self.teams: dict[str, TeamConfig] = {t.name: t for t in config.teams} if config else {}
        self.configured_keys: list[GatewayKey] = list(config.keys) if config else []
        self._configured: dict[str, Caller] = {}
        for key in self.configured_keys:
            caller = caller_for(key, self.teams.get(key.team) if key.team else None)
            self._configured[caller.digest] = caller
        self.configured_names = frozenset(c.name for c in self._configured.values())
        self._callers = dict(self._configured)
        self.by_name = {c.name: c for c in self._callers.values()}

    @property
    def open(self) -> bool:
        return self._open

    def callers(self) -> list[Caller]:
        """Every key in force, the config's and the store's (for views of their budgets)."""
        return list(self._callers.values())

    def replace_stored(self, keys: Iterable[GatewayKey]) -> None:
        """Install a new snapshot of the store's keys (a key missing from it is revoked)."""
        callers = dict(self._configured)
        for key in keys:
            if key.name in self.configured_names:
                continue  # the config file's key of that name wins
            caller = caller_for(key, self.teams.get(key.team) if key.team else None)
            callers[caller.digest] = caller
        self._callers = callers
        self.by_name = {c.name: c for c in callers.values()}

    def authenticate(self, headers: Mapping[str, str]) -> Caller:
        if self._open:
            return ANONYMOUS
        key = _presented_key(headers)
        if key is None:
            raise AuthenticationFailed(
                "Missing API key: send it as 'Authorization: Bearer <key>' or 'X-Api-Key'."
            )
        digest = digest_of(key)
        caller = self._callers.get(digest)
        if caller is None or not hmac.compare_digest(caller.digest, digest):
            raise AuthenticationFailed("Incorrect API key provided.")
        if caller.expires_at is not None and self._clock() >= caller.expires_at:
            raise AuthenticationFailed(f"The API key '{caller.name}' has expired.")
        return caller


class AdminAuthenticator:
    """The admin key guards `/v1/admin/...`, whatever `auth` says: even an open demo
    gateway does not let anyone change its prices."""

    def __init__(self, config: AdminConfig | None) -> None:
        self._digest = config.key_sha256.lower() if config else None

    @property
    def enabled(self) -> bool:
        return self._digest is not None

    def is_admin(self, headers: Mapping[str, str]) -> bool:
        """Whether these headers carry the admin key (without raising)."""
        key = _presented_key(headers)
        return (
            self._digest is not None
            and key is not None
            and hmac.compare_digest(digest_of(key), self._digest)
        )

    def authenticate(self, headers: Mapping[str, str]) -> None:
        if self._digest is None:
            raise PermissionDenied(
                "Admin endpoints are off: set admin.key_sha256 in the config.",
                code="admin_disabled",
            )
        key = _presented_key(headers)
        if key is None:
            raise AuthenticationFailed("Missing admin key: send it as 'Authorization: Bearer'.")
        if not hmac.compare_digest(digest_of(key), self._digest):
            raise AuthenticationFailed("Incorrect admin key provided.")
