"""Managing the keys kept in the store: what `/v1/admin/keys` and `switchboard keys`
both do. Errors are `SwitchboardError`s, which the admin API answers as they are and the
command line prints."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Literal

import msgspec

from gateway.governance.config import Budget, GatewayKey, TeamConfig
from gateway.governance.errors import StoreDown
from gateway.governance.keys import (
    KeyChange,
    NewKey,
    StoredKey,
    changed,
    decode_keys,
    encode_key,
    mint,
)
from gateway.governance.periods import period_id
from gateway.governance.store import GovernanceStore
from providers.errors import InvalidRequest, NotFound, SwitchboardError
from routing.store.errors import StoreUnavailable


class KeyExists(SwitchboardError):
    status = 409
    type = "invalid_request_error"
    code = "key_exists"


class KeyInConfig(SwitchboardError):
    status = 409
    type = "invalid_request_error"
    code = "key_in_config"


class KeyNotFound(NotFound):
    code = "key_not_found"


class Spend(msgspec.Struct, kw_only=True):
    today_usd: float
    month_usd: float
    reserved_usd: float  # held by requests in flight, today


class KeyInfo(msgspec.Struct, kw_only=True):
    name: str
    source: Literal["config", "store"]
    team: str | None
    prefix: str | None  # the plain key's first characters (stored keys)
    created_at: float | None
    last_used_at: float | None
    disabled: bool
    expires_at: datetime | None
    rpm: int | None
    tpm: int | None
    budget_usd: Budget | None
    allowed_models: list[str]
    metadata: dict[str, Any]
    spend: Spend


class CreatedKey(KeyInfo, kw_only=True):
    key: str  # the plain key: shown this once, never stored


class KeyList(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[KeyInfo]


def decode_body(body: bytes, type_: type[Any]) -> Any:
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"Invalid key settings: {exc}.") from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc}.", code="invalid_json") from None
    except RecursionError:
        raise InvalidRequest("The body is nested too deeply.", code="json_too_deep") from None


class KeyAdmin:
    def __init__(
        self,
        store: GovernanceStore,
        configured: list[GatewayKey],
        teams: Mapping[str, TeamConfig],
        changed: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`changed`: called after every change (the gateway rereads its key snapshot)."""
        self._store = store
        self._configured = configured
        self._configured_names = {k.name for k in configured}
        self._teams = teams
        self._changed = changed

    async def create(self, new: NewKey) -> CreatedKey:
        self._check_team(new.team)
        if new.name in self._configured_names:
            raise KeyExists(f"A key named '{new.name}' is set in the config file.", param="name")
        plain, stored = mint(new, time.time())
        if not await self._write(stored, create=True):
            raise KeyExists(f"A key named '{new.name}' exists already.", param="name")
        (info,) = await self.describe([new.name])
        return CreatedKey(**msgspec.structs.asdict(info), key=plain)

    async def update(self, name: str, change: KeyChange) -> KeyInfo:
        if isinstance(change.team, str):
            self._check_team(change.team)
        key = await self._stored(name)
        await self._write(changed(key, change), create=False)
        (info,) = await self.describe([name])
        return info

    async def revoke(self, name: str) -> None:
        await self._stored(name)
        try:
            await self._store.delete_key(name)
        except StoreUnavailable as exc:
            raise StoreDown(f"{exc}; nothing was changed, retry later.") from None
        if self._changed is not None:
            await self._changed()

    async def describe(self, names: list[str] | None = None) -> list[KeyInfo]:
        """Every key (or those named), with its spend today and this month."""
        try:
            stored = decode_keys(await self._store.stored_keys())
            used = await self._store.last_used()
            now = time.time()
            day, month = period_id("daily", now), period_id("monthly", now)
            keys: list[GatewayKey] = [*self._configured, *stored.values()]
            if names is not None:
                keys = [k for k in keys if k.name in names]
            buckets = [
                b for k in keys for b in (f"key:{k.name}:d:{day}", f"key:{k.name}:m:{month}")
            ]
            spend = await self._store.spend(buckets)
        except StoreUnavailable as exc:
            raise StoreDown(f"{exc}; retry later.") from None
        return [_info(key, used, spend, day, month) for key in keys]

    def _check_team(self, team: str | None) -> None:
        if team is not None and team not in self._teams:
            raise InvalidRequest(
                f"Unknown team '{team}': teams are set in auth.teams.", param="team"
            )

    async def _stored(self, name: str) -> StoredKey:
        if name in self._configured_names:
            raise KeyInConfig(
                f"The key '{name}' is set in the config file: change it there.", param="name"
            )
        try:
            stored = decode_keys(await self._store.stored_keys())
        except StoreUnavailable as exc:
            raise StoreDown(f"{exc}; nothing was changed, retry later.") from None
        key = stored.get(name)
        if key is None:
            raise KeyNotFound(f"No key is named '{name}'.", param="name")
        return key

    async def _write(self, key: StoredKey, *, create: bool) -> bool:
        try:
            written = await self._store.put_key(key.name, encode_key(key), create=create)
        except StoreUnavailable as exc:
            raise StoreDown(f"{exc}; nothing was changed, retry later.") from None
        if self._changed is not None:
            await self._changed()  # this replica at once; the others within one refresh
        return written


def _info(
    key: GatewayKey,
    used: Mapping[str, float],
    spend: Mapping[str, tuple[int, int]],
    day: str,
    month: str,
) -> KeyInfo:
    spent_day, held_day = spend[f"key:{key.name}:d:{day}"]
    spent_month, _ = spend[f"key:{key.name}:m:{month}"]
    stored = key if isinstance(key, StoredKey) else None
    return KeyInfo(
        name=key.name,
        source="store" if stored else "config",
        team=key.team,
        prefix=stored.prefix if stored else None,
        created_at=stored.created_at if stored else None,
        last_used_at=used.get(key.name),
        disabled=stored.disabled if stored else False,
        expires_at=key.expires_at,
        rpm=key.rpm,
        tpm=key.tpm,
        budget_usd=key.budget_usd,
        allowed_models=key.allowed_models,
        metadata=key.metadata,
        spend=Spend(
            today_usd=spent_day / 1e9, month_usd=spent_month / 1e9, reserved_usd=held_day / 1e9
        ),
    )
