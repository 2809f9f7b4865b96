"""What we read of an OpenAI-compatible upstream's answers.

The answer itself is passed through as the upstream's bytes; these lenient views only
pick out what routing needs (usage, whether a chunk carries output, errors) and check
that the bytes really are the documented JSON shape.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Raw

from providers.chat_types import Usage


class CompletionView(msgspec.Struct):
    choices: list[Raw]
    usage: Usage | None = None


class DeltaView(msgspec.Struct):
    content: str | None = None
    tool_calls: list[Raw] | None = None
    reasoning_content: str | None = None
    refusal: str | None = None
    function_call: Raw | None = None


class ChunkChoiceView(msgspec.Struct):
    delta: DeltaView | None = None
    finish_reason: str | None = None


class UpstreamErrorDetail(msgspec.Struct):
    message: str | None = None
    type: str | None = None
    code: str | int | None = None
    param: str | None = None


class ChunkView(msgspec.Struct):
    choices: list[ChunkChoiceView] | None = None
    usage: Usage | None = None
    error: UpstreamErrorDetail | str | None = None


class ErrorView(msgspec.Struct):
    """OpenAI's envelope, and the looser shapes compatible servers send instead."""

    error: UpstreamErrorDetail | str | None = None
    message: str | None = None
    detail: Any = None

    def summary(self) -> UpstreamErrorDetail:
        if isinstance(self.error, UpstreamErrorDetail):
            return self.error
        text = self.error or self.message or (str(self.detail) if self.detail else None)
        return UpstreamErrorDetail(message=text)


completion_decoder = msgspec.json.Decoder(CompletionView)
chunk_decoder = msgspec.json.Decoder(ChunkView)
error_decoder = msgspec.json.Decoder(ErrorView)
