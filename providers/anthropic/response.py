"""Anthropic Message → OpenAI chat completion (the non-streaming answer)."""

from __future__ import annotations

import msgspec
from msgspec import UNSET, Raw

from providers.anthropic.wire import AnthropicResponse, AnthropicUsage
from providers.chat_types import (
    ChatResponse,
    Choice,
    FunctionCall,
    PromptTokensDetails,
    ResponseMessage,
    ToolCall,
    Usage,
)

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",  # a server tool paused the turn: what came so far is the answer
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: str | None, *, called_tools: bool) -> str:
    if stop_reason == "tool_use" and not called_tools:
        return "stop"  # only the schema tool was called: its input is the text answer
    return _FINISH_REASONS.get(stop_reason or "", "stop")


def openai_usage(usage: AnthropicUsage) -> Usage:
    """Anthropic counts cache reads and cache writes apart from `input_tokens`; OpenAI's
    `prompt_tokens` is the whole prompt, with the cache hits as `cached_tokens`."""
    cached = usage.cache_read_input_tokens or 0
    prompt = (usage.input_tokens or 0) + cached + (usage.cache_creation_input_tokens or 0)
    completion = usage.output_tokens or 0
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=cached),
    )


# once: msgspec.structs.fields() resolves the annotations on every call (~0.4 ms a stream)
_USAGE_FIELDS: tuple[str, ...] = AnthropicUsage.__struct_fields__


def merge_usage(into: AnthropicUsage, update: AnthropicUsage) -> None:
    """A stream's usage so far, updated: `message_delta` counts are cumulative, so a
    count it carries replaces the earlier one."""
    for name in _USAGE_FIELDS:
        value = getattr(update, name)
        if value is not None:
            setattr(into, name, value)


def tool_arguments(tool_input: Raw) -> str:
    """The input object as compact JSON, the form OpenAI's `arguments` take."""
    return msgspec.json.encode(msgspec.json.decode(tool_input)).decode()


def openai_response(
    answer: AnthropicResponse, *, json_tool: str | None, created: int
) -> ChatResponse:
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[ToolCall] = []
    for block in answer.content:
        if block.type == "text" and block.text:
            texts.append(block.text)
        elif block.type == "thinking" and block.thinking:
            reasoning.append(block.thinking)
        elif block.type == "tool_use" and block.name == json_tool:
            texts.append(tool_arguments(block.input))
        elif block.type == "tool_use" and block.id and block.name:
            tool_calls.append(
                ToolCall(
                    id=block.id,
                    function=FunctionCall(name=block.name, arguments=tool_arguments(block.input)),
                )
            )
        # redacted_thinking, server tool blocks and unknown block types have no
        # OpenAI counterpart and are left out
    message = ResponseMessage(
        content="".join(texts) if texts else None,
        tool_calls=tool_calls or UNSET,
        reasoning_content="".join(reasoning) if reasoning else UNSET,
    )
    return ChatResponse(
        id=answer.id,
        created=created,
        model=answer.model,
        choices=[
            Choice(
                index=0,
                message=message,
                finish_reason=finish_reason(answer.stop_reason, called_tools=bool(tool_calls)),
            )
        ],
        usage=openai_usage(answer.usage) if answer.usage is not None else None,
    )
