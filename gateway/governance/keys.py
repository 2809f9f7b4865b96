"""Gateway keys kept in the store (next to those in the config file), and the snapshot
every replica authenticates from.

A key is minted from `secrets`: `sb-` and 43 URL-safe characters (256 bits). Its plain
text is shown once, to whoever created it; the store keeps its SHA-256 and its first
characters (`prefix`), by which a listing lets people recognise it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from gateway.auth import Authenticator
from gateway.governance.config import Budget, GatewayKey, Name, PerMinute
from gateway.governance.store import GovernanceStore

log = logging.getLogger("switchboard.governance")

KEY_PREFIX = "sb-"
SHOWN_CHARACTERS = 8  # of the plain key, kept to recognise it: `sb-` and 5 random ones


class StoredKey(GatewayKey, kw_only=True, forbid_unknown_fields=True):
    created_at: float  # epoch seconds
    prefix: str  # the plain key's first characters
    disabled: bool = False


class NewKey(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`POST /v1/admin/keys`."""

    name: Name
    team: Name | None = None
    rpm: PerMinute | None = None
    tpm: PerMinute | None = None
    budget_usd: Budget | None = None
    allowed_models: list[str] = msgspec.field(default_factory=lambda: ["*"])
    expires_at: datetime | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class KeyChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`PATCH /v1/admin/keys/{name}`: the fields sent replace the key's; `null` clears."""

    team: Name | UnsetType | None = UNSET
    rpm: PerMinute | UnsetType | None = UNSET
    tpm: PerMinute | UnsetType | None = UNSET
    budget_usd: Budget | UnsetType | None = UNSET
    allowed_models: Annotated[list[str], Meta(min_length=1)] | UnsetType = UNSET
    expires_at: datetime | UnsetType | None = UNSET
    metadata: dict[str, Any] | UnsetType = UNSET
    disabled: bool | UnsetType = UNSET


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(StoredKey).decode


def mint(new: NewKey, now: float) -> tuple[str, StoredKey]:
    """A new key: its plain text (to show once) and what the store keeps."""
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    stored = StoredKey(
        name=new.name,
        key_sha256=hashlib.sha256(plain.encode()).hexdigest(),
        team=new.team,
        rpm=new.rpm,
        tpm=new.tpm,
        budget_usd=new.budget_usd,
        allowed_models=new.allowed_models,
        expires_at=new.expires_at,
        metadata=new.metadata,
        created_at=now,
        prefix=plain[:SHOWN_CHARACTERS],
    )
    return plain, stored


def changed(key: StoredKey, change: KeyChange) -> StoredKey:
    updates = {
        field: value
        for field in change.__struct_fields__
        if (value := getattr(change, field)) is not UNSET
    }
    return msgspec.structs.replace(key, **updates)


def encode_key(key: StoredKey) -> bytes:
    return _encode(key)


def decode_keys(raw: dict[str, bytes]) -> dict[str, StoredKey]:
    keys = {}
    for name, data in raw.items():
        try:
            keys[name] = _decode(data)
        except msgspec.DecodeError:
            log.warning("ignoring an unreadable stored key %r", name)
    return keys


class KeySnapshots:
    """Rereads the store's keys every `refresh` seconds and installs them in the
    authenticator: a key revoked on any replica is refused on all within one refresh.
    While the store is unreachable the last snapshot stays in force."""

    def __init__(
        self,
        store: GovernanceStore,
        auth: Authenticator,
        refresh: float,
    ) -> None:
        self._store = store
        self._auth = auth
        self._refresh = refresh
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    async def load(self) -> None:
        try:
            keys = decode_keys(await self._store.stored_keys())
        except Exception as exc:
            if not self._failing:
                log.warning("cannot read the stored keys, keeping the last ones: %s", exc)
            self._failing = True
            return
        self._failing = False
        self._auth.replace_stored(k for k in keys.values() if not k.disabled)

    async def start(self) -> None:
        await self.load()
        self._task = asyncio.create_task(self._run(), name="key-snapshots")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._refresh)
            await self.load()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
