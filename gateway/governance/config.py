"""Config sections of governance: teams and keys (`auth`), the gateway's own budget and
the ledger (`governance`), input limits (`limits`) and browsers (`cors`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta

Name = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="Letters, digits, `.`, `_`, `-`; at most 64 characters.",
    ),
]
Usd = Annotated[float, Meta(ge=0)]
PerMinute = Annotated[int, Meta(ge=1)]
Digest = Annotated[str, Meta(pattern=r"^[0-9a-fA-F]{64}$")]


class Budget(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """USD a scope may spend per UTC day and per UTC month (either, both or neither)."""

    daily: Annotated[Usd | None, Meta(description="USD per UTC day.")] = None
    monthly: Annotated[Usd | None, Meta(description="USD per UTC calendar month.")] = None


class Limits(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What a key or a team may do: its fields, shared by both."""

    budget_usd: Annotated[Budget | None, Meta(description="Spend caps, enforced.")] = None
    rpm: Annotated[PerMinute | None, Meta(description="Requests per minute.")] = None
    tpm: Annotated[
        PerMinute | None,
        Meta(
            description="Tokens per minute: prompt estimate plus output limit on admission, "
            "settled to the real usage."
        ),
    ] = None
    allowed_models: Annotated[
        list[str], Meta(description="Glob patterns of model names it may request.")
    ] = msgspec.field(default_factory=lambda: ["*"])


class TeamConfig(Limits, kw_only=True, forbid_unknown_fields=True):
    """A team: its limits apply to all its keys together, on top of each key's own."""

    name: Name


class GatewayKey(Limits, kw_only=True, forbid_unknown_fields=True):
    """A gateway key in the config file: only its SHA-256 is written down."""

    name: Name
    key_sha256: Annotated[Digest, Meta(description='printf %s "$KEY" | sha256sum')]
    team: Annotated[Name | None, Meta(description="A team of `auth.teams`.")] = None
    expires_at: Annotated[
        datetime | None, Meta(description="RFC 3339 time after which the key is refused.")
    ] = None
    metadata: Annotated[dict[str, Any], Meta(description="Free-form; shown by the admin API.")] = (
        msgspec.field(default_factory=dict)
    )


class AuthConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    keys: list[GatewayKey] = msgspec.field(default_factory=list)
    teams: list[TeamConfig] = msgspec.field(default_factory=list)


class GovernanceConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Gateway-wide budget, how fast changes reach every replica, and the ledger."""

    budget_usd: Annotated[
        Budget | None, Meta(description="The whole gateway's spend cap, all keys together.")
    ] = None
    refresh: Annotated[
        float,
        Meta(
            gt=0,
            le=60,
            description="Seconds between reads of the keys in the store: a "
            "revoked key is refused on every replica within this.",
        ),
    ] = 1.0
    default_max_output_tokens: Annotated[
        int,
        Meta(
            ge=1,
            description="Output tokens a budget reservation assumes when the request "
            "sets no max_tokens and the model's maximum output is unknown.",
        ),
    ] = 16384
    hold_margin: Annotated[
        float,
        Meta(
            ge=1,
            description="Seconds past the routing deadline after which a reservation "
            "that was never settled (its replica died) expires.",
        ),
    ] = 60.0
    ledger_retention_days: Annotated[
        int, Meta(ge=1, le=3660, description="Days the spend ledger keeps each UTC day.")
    ] = 400
    idempotency_ttl: Annotated[
        float, Meta(gt=0, description="Seconds an idempotent answer can be replayed.")
    ] = 86400.0


class LimitsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Bounds on what a request may be; beyond them a clear 4xx, never a 500."""

    max_request_bytes: Annotated[
        int, Meta(ge=1024, description="Larger bodies get 413 request_too_large.")
    ] = 20_000_000
    max_messages: Annotated[
        int, Meta(ge=1, description="More messages get 400 too_many_messages.")
    ] = 10_000
    max_json_depth: Annotated[
        int,
        Meta(
            ge=8,
            le=512,
            description="Deeper nesting of JSON arrays and objects gets 400 json_too_deep.",
        ),
    ] = 64
    max_n: Annotated[
        int, Meta(ge=1, le=128, description="Largest `n` (choices per request) accepted.")
    ] = 128


class CorsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Browsers may call the gateway only from these origins; without it, from none."""

    allow_origins: Annotated[
        list[str], Meta(description="Origins such as `https://app.example.com`, or `*`.")
    ] = msgspec.field(default_factory=list)
