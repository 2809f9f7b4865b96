"""A chat completion as a Response object, and what both kinds of answer share.

`Echo` is the request's settings that every Response object of a request repeats (as
OpenAI's do); `output_items` turns an assistant message into output items: its reasoning,
then its text, then its function calls, in the order OpenAI's models produce them.
"""

from __future__ import annotations

import os
import time
from typing import Any

import msgspec
from msgspec import UNSET, Raw

from gateway.ingress.responses.wire import (
    IncompleteDetails,
    ItemStatus,
    OutputContent,
    OutputFunctionCall,
    OutputItem,
    OutputMessage,
    OutputReasoning,
    OutputRefusal,
    OutputText,
    ReasoningEcho,
    ReasoningText,
    ResponseError,
    ResponseObject,
    ResponsesRequest,
    ResponsesUsage,
    Status,
    SummaryText,
    usage_of,
)
from providers.chat_types import CompletionTokensDetails, Usage

_encode = msgspec.json.encode
_NULL = Raw(b"null")


def new_id(prefix: str) -> str:
    return f"{prefix}_{os.urandom(24).hex()}"


class ItemIds:
    """Ids for one response's items: one random part, a counter after it."""

    def __init__(self) -> None:
        self._base = os.urandom(12).hex()
        self._count = 0

    def __call__(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._base}{self._count:02d}"


class Echo:
    """The request's settings, as every Response object of the request repeats them."""

    def __init__(self, request: ResponsesRequest, fields: dict[str, Raw]) -> None:
        # inline `is UNSET` tests, not a helper per field: this runs on every request
        u = UNSET
        reasoning = request.reasoning
        instructions = request.instructions
        max_output = request.max_output_tokens
        max_calls = request.max_tool_calls
        parallel = request.parallel_tool_calls
        previous = request.previous_response_id
        temperature = request.temperature
        top_logprobs = request.top_logprobs
        top_p = request.top_p
        truncation = request.truncation
        user = request.user
        self._template = ResponseObject(
            id="",
            created_at=0,
            status="in_progress",
            model="",
            output=[],
            instructions=None if instructions is u else instructions,
            max_output_tokens=None if max_output is u else max_output,
            max_tool_calls=None if max_calls is u else max_calls,
            parallel_tool_calls=True if parallel is u else parallel,
            previous_response_id=None if previous is u else previous,
            reasoning=ReasoningEcho()
            if reasoning is u
            else ReasoningEcho(
                effort=reasoning.effort, summary=reasoning.summary or reasoning.generate_summary
            ),
            store=request.store is not False,  # ResponsesRequest.stores
            temperature=1.0 if temperature is u else temperature,
            top_logprobs=0 if top_logprobs is u else top_logprobs,
            top_p=1.0 if top_p is u else top_p,
            truncation="disabled" if truncation is u else truncation,
            user=None if user is u else user,
        )
        for name in ("text", "tool_choice", "tools", "metadata"):
            value = fields.get(name)
            if value is not None and value != _NULL:
                setattr(self._template, name, value)

    def response(
        self,
        response_id: str,
        created_at: int,
        model: str,
        status: Status,
        output: list[OutputItem],
        *,
        usage: ResponsesUsage | None = None,
        incomplete: IncompleteDetails | None = None,
        error: ResponseError | None = None,
    ) -> ResponseObject:
        return msgspec.structs.replace(
            self._template,
            id=response_id,
            created_at=created_at,
            model=model,
            status=status,
            output=output,
            usage=usage,
            incomplete_details=incomplete,
            error=error,
        )


def responses_usage(usage: Usage) -> ResponsesUsage:
    details = usage.completion_tokens_details
    reasoning = details.reasoning_tokens if isinstance(details, CompletionTokensDetails) else 0
    return usage_of(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, reasoning)


def ending(finish_reason: str | None) -> tuple[Status, IncompleteDetails | None]:
    """A chat finish reason as a Response's status."""
    if finish_reason == "length":
        return "incomplete", IncompleteDetails(reason="max_output_tokens")
    if finish_reason == "content_filter":
        return "incomplete", IncompleteDetails(reason="content_filter")
    return "completed", None


# --- what is read of a chat answer (lenient: compatible servers differ in details) ---


class FunctionView(msgspec.Struct):
    name: str | None = None
    arguments: str | dict[str, Any] | None = None  # some servers send an object


class ToolCallView(msgspec.Struct):
    index: int = 0
    id: str | None = None
    function: FunctionView | None = None


class MessageView(msgspec.Struct):
    """`message` of a completion, or `delta` of a chunk."""

    # a string, or typed parts (Mistral's reasoning models: `text` and `thinking`)
    content: str | list[dict[str, Any]] | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallView] | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None  # Groq's, OpenRouter's and vLLM's name for the same

    def text_and_reasoning(self) -> tuple[str, str]:
        reasoning = self.reasoning_content or self.reasoning or ""
        content = self.content
        if content is None or isinstance(content, str):
            return content or "", reasoning
        texts = []
        for part in content:
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") == "thinking":
                reasoning += "".join(
                    p.get("text", "") for p in part.get("thinking") or () if isinstance(p, dict)
                )
        return "".join(texts), reasoning


class ChoiceView(msgspec.Struct):
    message: MessageView | None = None
    delta: MessageView | None = None
    finish_reason: str | None = None


class CompletionView(msgspec.Struct):
    model: str | None = None
    choices: list[ChoiceView] = []


completion_view = msgspec.json.Decoder(CompletionView)


def arguments_text(function: FunctionView | None) -> str:
    if function is None or function.arguments is None:
        return ""
    arguments = function.arguments
    return arguments if isinstance(arguments, str) else _encode(arguments).decode()


# --- a whole answer -----------------------------------------------------------------


def reasoning_item(item_id: str, text: str, *, summary: bool) -> OutputReasoning:
    if summary:
        return OutputReasoning(id=item_id, summary=[SummaryText(text=text)])
    return OutputReasoning(id=item_id, summary=[], content=[ReasoningText(text=text)])


def output_items(
    message: MessageView, ids: ItemIds, *, summary: bool, status: Status
) -> list[OutputItem]:
    text, reasoning = message.text_and_reasoning()
    items: list[OutputItem] = []
    if reasoning:
        items.append(reasoning_item(ids("rs"), reasoning, summary=summary))
    item_status: ItemStatus = "incomplete" if status == "incomplete" else "completed"
    calls = message.tool_calls or []
    if text or message.refusal or not calls:
        content: list[OutputContent] = []
        if text or not message.refusal:
            content.append(OutputText(text=text))
        if message.refusal:
            content.append(OutputRefusal(refusal=message.refusal))
        items.append(OutputMessage(id=ids("msg"), status=item_status, content=content))
    for call in calls:
        function = call.function
        items.append(
            OutputFunctionCall(
                id=ids("fc"),
                status="completed",
                call_id=call.id or ids("call"),
                name=(function.name if function else None) or "",
                arguments=arguments_text(function),
            )
        )
    return items


def response_from_chat(
    body: bytes,
    usage: Usage | None,
    echo: Echo,
    response_id: str,
    *,
    model: str,
    summary: bool,
) -> ResponseObject:
    """`usage`: the upstream's, None when it sent none (the Response then has none, as a
    chat answer without usage gets none)."""
    completion = completion_view.decode(body)
    choice = completion.choices[0] if completion.choices else ChoiceView()
    status, incomplete = ending(choice.finish_reason)
    items = output_items(choice.message or MessageView(), ItemIds(), summary=summary, status=status)
    return echo.response(
        response_id,
        int(time.time()),
        completion.model or model,
        status,
        items,
        usage=responses_usage(usage) if usage is not None else None,
        incomplete=incomplete,
    )
