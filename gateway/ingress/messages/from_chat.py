"""A chat completion (what a translated deployment answered) → a Messages API Message.

The inverse of `providers/anthropic/response.py`: reasoning text becomes a `thinking`
block (first, as Claude writes it), the text a `text` block, each tool call a `tool_use`
block whose `input` is the call's arguments object; `finish_reason` becomes the
`stop_reason`; `usage` counts the cache reads apart from `input_tokens`, as Anthropic
does. Upstream answers are read leniently (OpenAI-compatible servers name reasoning
`reasoning` or send content as typed parts), and an answer that cannot be a Message
(tool arguments that are not a JSON object) fails this deployment's try.
"""

from __future__ import annotations

import msgspec
from msgspec import Raw

from gateway.ingress.messages.wire import (
    ContentOut,
    MessageOut,
    TextOut,
    ThinkingOut,
    ToolUseOut,
    UsageOut,
)
from providers.anthropic.request import tool_use_id
from providers.chat_types import Usage
from providers.errors import UpstreamProtocolError
from providers.openai.wire import UsageView

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_EMPTY_INPUT = Raw(b"{}")
_object_decoder = msgspec.json.Decoder(dict[str, Raw])


class _FunctionView(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class _ToolCallView(msgspec.Struct):
    id: str | None = None
    function: _FunctionView | None = None


class _PartView(msgspec.Struct):
    type: str | None = None
    text: str | None = None


class _MessageView(msgspec.Struct):
    content: str | list[_PartView] | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None  # Groq's, OpenRouter's and vLLM's name for the same
    tool_calls: list[_ToolCallView] | None = None


class _ChoiceView(msgspec.Struct):
    message: _MessageView | None = None
    finish_reason: str | None = None


class _AnswerView(msgspec.Struct):
    id: str = ""
    model: str = ""
    choices: list[_ChoiceView] = []
    usage: UsageView | None = None


_answer_decoder = msgspec.json.Decoder(_AnswerView)


def stop_reason(finish_reason: str | None, *, called_tools: bool) -> str:
    if called_tools:
        return "tool_use"  # some servers say `stop` after calling tools
    return _STOP_REASONS.get(finish_reason or "", "end_turn")


def usage_out(usage: Usage) -> UsageOut:
    cached = usage.cached_tokens
    return UsageOut(
        input_tokens=max(usage.prompt_tokens - cached, 0),
        output_tokens=usage.completion_tokens,
        cache_read_input_tokens=cached,
    )


def message_id(upstream_id: str, request_id: str) -> str:
    """`msg_…`, as Anthropic's ids read, from the upstream's id (else ours)."""
    bare = upstream_id.removeprefix("chatcmpl-") or request_id
    return bare if bare.startswith("msg_") else f"msg_{bare}"


def tool_input(arguments: str | None, provider: str) -> Raw:
    """A call's arguments as the `input` object, as the upstream wrote them."""
    text = (arguments or "").strip()
    if not text:
        return _EMPTY_INPUT
    try:
        _object_decoder.decode(text)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise UpstreamProtocolError(
            f"{provider} called a tool with arguments that are not a JSON object",
            provider=provider,
        ) from exc
    return Raw(text.encode())


def messages_answer(body: bytes, *, provider: str, request_id: str) -> MessageOut:
    """The Message for a chat completion; its `usage` is filled in by the caller once
    it is known whether the upstream counted (see `with_usage`)."""
    try:
        answer = _answer_decoder.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise UpstreamProtocolError(
            f"{provider} answered with something that is not a chat completion: {exc}",
            provider=provider,
        ) from exc
    choice = answer.choices[0] if answer.choices else _ChoiceView()
    message = choice.message or _MessageView()
    content: list[ContentOut] = []
    reasoning = message.reasoning_content or message.reasoning
    if reasoning:
        content.append(ThinkingOut(thinking=reasoning))
    text = _text(message)
    if text:
        content.append(TextOut(text=text))
    for index, call in enumerate(message.tool_calls or []):
        function = call.function or _FunctionView()
        content.append(
            ToolUseOut(
                id=tool_use_id(call.id) if call.id else f"toolu_{request_id}_{index}",
                name=function.name or "",
                input=tool_input(function.arguments, provider),
            )
        )
    reason = stop_reason(choice.finish_reason, called_tools=bool(message.tool_calls))
    if message.refusal and not message.content:
        reason = "refusal"
    return MessageOut(
        id=message_id(answer.id, request_id),
        model=answer.model,
        content=content,
        stop_reason=reason,
        usage=UsageOut(input_tokens=0, output_tokens=0),
    )


def _text(message: _MessageView) -> str:
    content = message.content
    if isinstance(content, list):  # typed parts (Mistral's reasoning models): the text ones
        content = "".join(part.text or "" for part in content if part.type == "text")
    return content or message.refusal or ""
