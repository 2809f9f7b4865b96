"""Config of an OpenAI-wire upstream: a preset (or a base URL) plus explicit overrides."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from providers.capabilities import CapabilityOverrides, with_overrides
from providers.connection import ConnectionOptions
from providers.openai.presets import (
    PRESETS,
    ForwardingProfile,
    OutputLimitField,
    PresetName,
)

HttpURL = Annotated[str, Meta(pattern=r"^https?://")]


class UpstreamOptions(ConnectionOptions, kw_only=True, forbid_unknown_fields=True):
    """What any OpenAI-wire upstream's config may say (OpenAI-compatible and Azure)."""

    # explicit values win over the preset's (see presets.ForwardingProfile)
    output_limit_field: OutputLimitField | None = None
    stream_usage: bool | None = None
    drop_params: list[str] | None = None  # replaces the preset's list
    capabilities: CapabilityOverrides | None = None
    responses_api: bool | None = None  # serves `POST /responses` (see presets.ForwardingProfile)

    def profile_over(self, base: ForwardingProfile) -> ForwardingProfile:
        """`base` with this config's explicit choices applied."""
        changes: dict[str, Any] = {}
        if self.output_limit_field is not None:
            changes["output_limit_field"] = self.output_limit_field
        if self.stream_usage is not None:
            changes["stream_usage"] = self.stream_usage
        if self.drop_params is not None:
            changes["drop_params"] = tuple(self.drop_params)
        if self.capabilities is not None:
            changes["capabilities"] = with_overrides(base.capabilities, self.capabilities)
        if self.responses_api is not None:
            changes["responses_api"] = self.responses_api
        return msgspec.structs.replace(base, **changes)


class OpenAIConfig(
    UpstreamOptions, tag="openai", tag_field="kind", kw_only=True, forbid_unknown_fields=True
):
    preset: PresetName | None = None
    base_url: HttpURL | None = None  # the preset's when not given
    api_key: str | None = None

    def __post_init__(self) -> None:
        if self.base_url is None and self.preset is None:
            # a rule across two fields has no field of its own to fail on; the message
            # names the missing one with msgspec's own path suffix, which is how
            # gateway/config.py turns it into `providers.<name>.base_url: ...`
            raise ValueError("required when no `preset` supplies it - at `$.base_url`")

    @property
    def resolved_base_url(self) -> str:
        if self.base_url is not None:
            return self.base_url
        assert self.preset is not None  # __post_init__ refused the config otherwise
        return PRESETS[self.preset].base_url

    def profile(self) -> ForwardingProfile:
        base = PRESETS[self.preset] if self.preset is not None else ForwardingProfile()
        return self.profile_over(base)

    def __repr__(self) -> str:
        # the key must never reach a log line, even through a repr
        return (
            f"OpenAIConfig(preset={self.preset!r}, base_url={self.resolved_base_url!r}, "
            "api_key=<hidden>)"
        )
