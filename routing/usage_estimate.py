"""Token counts for answers whose upstream reported no usage (`cost.estimated: true`)."""

from __future__ import annotations

import msgspec

from providers.chat_types import Usage


def estimated_usage(prompt: int, *, completion_tokens: int) -> Usage:
    """When the upstream reports no usage: our own count (`prompt`: the plan's estimate
    of the request; a token per streamed delta)."""
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion_tokens,
        total_tokens=prompt + completion_tokens,
    )


class _AnswerMessage(msgspec.Struct):
    content: str | None = None


class _AnswerChoice(msgspec.Struct):
    message: _AnswerMessage | None = None  # chat
    text: str | None = None  # legacy completions


class _AnswerText(msgspec.Struct):
    choices: list[_AnswerChoice] = []


def completion_tokens_in(body: bytes) -> int:
    """About four characters a token, for answers that came without usage."""
    try:
        answer = msgspec.json.decode(body, type=_AnswerText)
    except msgspec.MsgspecError:
        return 0
    text = sum(
        len((c.message.content if c.message is not None else None) or c.text or "")
        for c in answer.choices
    )
    return (text + 3) // 4
