"""Token counts for answers whose upstream reported no usage (`cost.estimated: true`)."""

from __future__ import annotations

import msgspec

from providers.chat_types import ChatRequest, Usage


def estimated_usage(request: ChatRequest, *, completion_tokens: int) -> Usage:
    """When the upstream reports no usage: our own count (a token per streamed delta)."""
    prompt = request.estimated_prompt_tokens()
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion_tokens,
        total_tokens=prompt + completion_tokens,
    )


class _AnswerMessage(msgspec.Struct):
    content: str | None = None


class _AnswerChoice(msgspec.Struct):
    message: _AnswerMessage | None = None


class _AnswerText(msgspec.Struct):
    choices: list[_AnswerChoice] = []


def completion_tokens_in(body: bytes) -> int:
    """About four characters a token, for answers that came without usage."""
    try:
        answer = msgspec.json.decode(body, type=_AnswerText)
    except msgspec.MsgspecError:
        return 0
    text = sum(len(c.message.content or "") for c in answer.choices if c.message is not None)
    return (text + 3) // 4
