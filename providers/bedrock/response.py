"""Bedrock Converse answer → OpenAI chat completion."""

from __future__ import annotations

import msgspec

from providers.bedrock.wire import BedrockConverseResponse, BedrockToolUseView, BedrockUsage
from providers.chat_types import (
    ChatResponse,
    Choice,
    FunctionCall,
    PromptTokensDetails,
    ResponseMessage,
    ToolCall,
    Usage,
)
from providers.errors import UpstreamUnavailable

# Converse `stopReason` → OpenAI `finish_reason`
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
# the model's output is not usable (Converse could not parse it): another try may be
MALFORMED = frozenset({"malformed_model_output", "malformed_tool_use"})


def finish_reason(stop_reason: str, *, answered_with_json_tool: bool, provider: str) -> str:
    if stop_reason in MALFORMED:
        raise UpstreamUnavailable(
            f"{provider}: the model's output was malformed ({stop_reason})", provider=provider
        )
    if stop_reason == "tool_use" and answered_with_json_tool:
        return "stop"  # the tool call was the answer the client asked for
    return FINISH_REASONS.get(stop_reason, "stop")


def openai_usage(usage: BedrockUsage) -> Usage:
    """Converse's `inputTokens` leaves out the prompt tokens read from or written to the
    cache; OpenAI's `prompt_tokens` counts every prompt token, cached ones included."""
    prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_write_input_tokens
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=usage.output_tokens,
        total_tokens=prompt + usage.output_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=usage.cache_read_input_tokens),
    )


def tool_arguments(tool_use: BedrockToolUseView) -> str:
    return msgspec.json.encode(tool_use.input).decode()


def openai_response(
    answer: BedrockConverseResponse,
    *,
    response_id: str,
    model: str,
    created: int,
    json_tool: str | None,
    provider: str,
) -> ChatResponse:
    blocks = answer.output.message.content if answer.output.message is not None else []
    texts: list[str] = []
    answered_with_json_tool = False
    reasoning: list[str] = []
    tool_calls: list[ToolCall] = []
    for block in blocks:
        if block.text:
            texts.append(block.text)
        elif block.tool_use is not None and block.tool_use.name == json_tool:
            # the answer the client asked for; with the tool forced, nothing surrounds it
            texts.append(tool_arguments(block.tool_use))
            answered_with_json_tool = True
        elif block.tool_use is not None:
            tool_calls.append(
                ToolCall(
                    id=block.tool_use.tool_use_id,
                    function=FunctionCall(
                        name=block.tool_use.name, arguments=tool_arguments(block.tool_use)
                    ),
                )
            )
        elif block.reasoning_content is not None and block.reasoning_content.reasoning_text:
            reasoning.append(block.reasoning_content.reasoning_text.text)
    message = ResponseMessage(
        content="".join(texts) or None,
        tool_calls=tool_calls or msgspec.UNSET,
        reasoning_content="".join(reasoning) if reasoning else msgspec.UNSET,
    )
    return ChatResponse(
        id=response_id,
        created=created,
        model=model,
        choices=[
            Choice(
                index=0,
                message=message,
                finish_reason=finish_reason(
                    answer.stop_reason,
                    answered_with_json_tool=answered_with_json_tool and not tool_calls,
                    provider=provider,
                ),
            )
        ],
        usage=openai_usage(answer.usage) if answer.usage is not None else None,
    )
