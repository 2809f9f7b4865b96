"""OpenAI chat request → Anthropic Messages request.

What Anthropic has no field for is left out here and named by `dropped_params`, which
the adapter reports as its unsupported parameters. What it cannot express at all (audio,
OpenAI file ids, tool arguments that are not a JSON object) is a 400 naming the part.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any, Literal

import msgspec
from msgspec import UNSET, Raw, UnsetType

from providers.anthropic.config import AnthropicConfig
from providers.anthropic.wire import (
    AnthropicBase64Source,
    AnthropicContentBlock,
    AnthropicDocumentBlock,
    AnthropicImageBlock,
    AnthropicMessage,
    AnthropicMetadata,
    AnthropicRequest,
    AnthropicTextBlock,
    AnthropicThinking,
    AnthropicTool,
    AnthropicToolChoice,
    AnthropicToolResultBlock,
    AnthropicToolUseBlock,
    AnthropicURLSource,
)
from providers.chat_types import (
    AssistantMessage,
    AudioPart,
    ChatRequest,
    DeveloperMessage,
    FilePart,
    FunctionMessage,
    ImagePart,
    JSONObjectFormat,
    JSONSchemaResponseFormat,
    Message,
    NamedToolChoice,
    RefusalPart,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    UserContentPart,
    UserMessage,
)
from providers.errors import InvalidRequest

JSON_OBJECT_INSTRUCTION = "Respond with a single JSON object and nothing else."
JSON_TOOL_DESCRIPTION = "Give your answer by calling this tool: its input is the answer."
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}
# thinking leaves top_p only this much room (Anthropic's documented bounds)
_MIN_TOP_P_WITH_THINKING = 0.95
# OpenAI takes temperatures up to 2, Anthropic up to 1: higher ones are sent as its highest
MAX_TEMPERATURE = 1.0
# Anthropic's pattern for tool_use ids; ids minted by other providers may not match it
_TOOL_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")

# request fields translated here; logprobs, top_logprobs and n > 1 are named by the
# capability check (`droppable_unsupported`) instead
_TRANSLATED = frozenset(
    {
        "messages",
        "model",
        "stream",
        "stream_options",  # Anthropic streams always report usage
        "temperature",
        "top_p",
        "stop",
        "max_tokens",
        "max_completion_tokens",
        "user",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
        "n",
        "logprobs",
        "top_logprobs",
    }
)
_DROPPABLE_FIELDS = frozenset(ChatRequest.__struct_fields__) - {"messages", "stream", "raw"}
_NULL = Raw(b"null")
Role = Literal["user", "assistant"]
_args_decoder = msgspec.json.Decoder(dict[str, Raw])


class AnthropicCall(msgspec.Struct, kw_only=True):
    """The upstream body, and what reading its answer needs to know about it."""

    body: bytes
    # the tool that stands in for `response_format: json_schema`: its input is the answer
    json_tool: str | None = None


def build_request(
    request: ChatRequest,
    model: str,
    config: AnthropicConfig,
    *,
    stream: bool,
    dropped: Collection[str] = (),
    request_id: str = "",
) -> AnthropicCall:
    """`dropped`: parameters routing decided this deployment does not honour (e.g.
    `reasoning_effort` for a model without extended thinking); they are left out.
    `request_id`: ours, sent as `metadata.user_id` when the client named no `user`: the
    Messages API reads no request id header, and this is the field its logs keep."""
    request = _without(request, dropped)
    system, messages = _conversation(request.messages)
    if isinstance(request.response_format, JSONObjectFormat):
        system.append(JSON_OBJECT_INSTRUCTION)
    tools, tool_choice, json_tool = _tools(request)
    budget = _thinking_budget(request, config)
    limit = request.output_limit or config.default_max_tokens
    body = AnthropicRequest(
        model=model,
        # the budget counts towards max_tokens and must be below it
        max_tokens=limit + budget if budget is not None and limit <= budget else limit,
        messages=messages,
        system=_system(system),
        stop_sequences=_stop_sequences(request),
        tools=tools or UNSET,
        tool_choice=tool_choice if tools and tool_choice is not None else UNSET,
        thinking=AnthropicThinking(budget_tokens=budget) if budget is not None else UNSET,
        metadata=(
            AnthropicMetadata(user_id=request.user or request_id)
            if request.user or request_id
            else UNSET
        ),
        stream=True if stream else UNSET,
    )
    if budget is None and isinstance(request.temperature, float | int):
        body.temperature = min(request.temperature, MAX_TEMPERATURE)
    if isinstance(request.top_p, float | int) and (
        budget is None or request.top_p >= _MIN_TOP_P_WITH_THINKING
    ):
        body.top_p = request.top_p
    return AnthropicCall(body=_encode_with_extensions(body, request), json_tool=json_tool)


def dropped_params(
    request: ChatRequest, config: AnthropicConfig, already: Collection[str] = ()
) -> list[str]:
    """The client's parameters this translation leaves out, besides those `already`
    dropped for the deployment's capabilities (which may rule out thinking)."""
    request = _without(request, already)
    dropped = [
        name
        for name, value in request.raw.items()
        if name not in _TRANSLATED and name not in already and value != _NULL
    ]
    if thinking_effort(request) is not None and thinking_refused(request):
        dropped.append("reasoning_effort")
    if _thinking_budget(request, config, strict=False) is not None:
        if isinstance(request.temperature, float | int):
            dropped.append("temperature")
        if isinstance(request.top_p, float | int) and request.top_p < _MIN_TOP_P_WITH_THINKING:
            dropped.append("top_p")
    return dropped


def _without(request: ChatRequest, dropped: Collection[str]) -> ChatRequest:
    unset = {name: UNSET for name in dropped if name in _DROPPABLE_FIELDS}
    return msgspec.structs.replace(request, **unset) if unset else request


def _encode_with_extensions(body: AnthropicRequest, request: ChatRequest) -> bytes:
    extra = request.extensions.get("anthropic") if isinstance(request.extensions, dict) else None
    if not extra:
        return msgspec.json.encode(body)
    fields: dict[str, Any] = {
        name: value for name, value in msgspec.structs.asdict(body).items() if value is not UNSET
    }
    fields.update(extra)  # the client's Anthropic-only fields, top level, as sent
    return msgspec.json.encode(fields)


# --- messages -------------------------------------------------------------------------


def _conversation(messages: list[Message]) -> tuple[list[str], list[AnthropicMessage]]:
    """System texts (Anthropic has no system turns: every system or developer message is
    hoisted to the top-level `system`), and turns with same-role neighbours merged."""
    system: list[str] = []
    turns: list[tuple[Role, list[AnthropicContentBlock]]] = []
    for position, message in enumerate(messages):
        where = f"messages[{position}]"
        if isinstance(message, SystemMessage | DeveloperMessage):
            system.extend(text for text in _texts(message.content) if text)
            continue
        role, blocks = _turn(message, where)
        if not blocks:
            continue
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    return system, [_message(role, blocks) for role, blocks in turns]


def _message(role: Role, blocks: list[AnthropicContentBlock]) -> AnthropicMessage:
    # a lone text block is sent as the plain string shorthand, as most callers write it
    content: str | list[AnthropicContentBlock] = (
        blocks[0].text if len(blocks) == 1 and isinstance(blocks[0], AnthropicTextBlock) else blocks
    )
    return AnthropicMessage(role=role, content=content)


def _turn(message: Message, where: str) -> tuple[Role, list[AnthropicContentBlock]]:
    if isinstance(message, UserMessage):
        # Anthropic refuses empty text blocks, which OpenAI takes (and clients send)
        if isinstance(message.content, str):
            return "user", [AnthropicTextBlock(text=message.content)] if message.content else []
        return "user", [
            _user_block(part, f"{where}.content[{index}]")
            for index, part in enumerate(message.content)
            if not isinstance(part, TextPart) or part.text
        ]
    if isinstance(message, ToolMessage):
        content: str | list[AnthropicTextBlock] = (
            message.content
            if isinstance(message.content, str)
            else [AnthropicTextBlock(text=part.text) for part in message.content]
        )
        # tool results go back to the model inside a user turn
        return "user", [
            AnthropicToolResultBlock(tool_use_id=tool_use_id(message.tool_call_id), content=content)
        ]
    if isinstance(message, AssistantMessage):
        return "assistant", _assistant_blocks(message, where)
    assert isinstance(message, FunctionMessage)
    raise InvalidRequest(
        f"'{where}': function-role messages have no tool call id to answer; send tool "
        "messages with tool_call_id instead.",
        param=where,
        code="unsupported_message",
    )


def _assistant_blocks(message: AssistantMessage, where: str) -> list[AnthropicContentBlock]:
    if message.function_call:
        raise InvalidRequest(
            f"'{where}.function_call' has no tool call id; send tool_calls instead.",
            param=f"{where}.function_call",
            code="unsupported_message",
        )
    blocks: list[AnthropicContentBlock] = []
    content = message.content
    parts = [content] if isinstance(content, str) else content or []
    for part in parts:
        text = part if isinstance(part, str) else _assistant_text(part)
        if text:  # Anthropic refuses empty text blocks
            blocks.append(AnthropicTextBlock(text=text))
    if isinstance(message.tool_calls, list):
        blocks.extend(
            _tool_use(call, f"{where}.tool_calls[{index}]")
            for index, call in enumerate(message.tool_calls)
        )
    return blocks


def _assistant_text(part: TextPart | RefusalPart) -> str:
    return part.text if isinstance(part, TextPart) else part.refusal


def _tool_use(call: ToolCall, where: str) -> AnthropicToolUseBlock:
    arguments = call.function.arguments.strip() or "{}"
    try:
        _args_decoder.decode(arguments)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise InvalidRequest(
            f"'{where}.function.arguments' must be a JSON object to be sent to Anthropic.",
            param=f"{where}.function.arguments",
            code="invalid_tool_arguments",
        ) from None
    return AnthropicToolUseBlock(
        id=tool_use_id(call.id), name=call.function.name, input=Raw(arguments)
    )


def tool_use_id(call_id: str) -> str:
    """The same mapping on a call and on its result keeps the two paired."""
    return _TOOL_ID_UNSAFE.sub("_", call_id) or "_"


def _texts(content: str | list[TextPart]) -> list[str]:
    return [content] if isinstance(content, str) else [part.text for part in content]


def _user_block(part: UserContentPart, where: str) -> AnthropicContentBlock:
    if isinstance(part, TextPart):
        return AnthropicTextBlock(text=part.text)
    if isinstance(part, ImagePart):
        url = part.image_url.url
        if url.startswith(("http://", "https://")):
            return AnthropicImageBlock(source=AnthropicURLSource(url=url))
        return AnthropicImageBlock(source=_data_url(url, f"{where}.image_url.url"))
    if isinstance(part, FilePart):
        return _document(part, where)
    assert isinstance(part, AudioPart)
    raise InvalidRequest(
        f"'{where}': Anthropic models take no audio input.",
        param=where,
        code="unsupported_content",
    )


def _document(part: FilePart, where: str) -> AnthropicDocumentBlock:
    file = part.file
    if not isinstance(file.file_data, str):
        raise InvalidRequest(
            f"'{where}': OpenAI file ids mean nothing to Anthropic; send the file as file_data.",
            param=f"{where}.file.file_id",
            code="unsupported_content",
        )
    source = _data_url(file.file_data, f"{where}.file.file_data")
    if source.media_type != "application/pdf":
        raise InvalidRequest(
            f"'{where}': Anthropic takes PDF files only (this one is {source.media_type}).",
            param=f"{where}.file.file_data",
            code="unsupported_content",
        )
    title = file.filename if isinstance(file.filename, str) else UNSET
    return AnthropicDocumentBlock(source=source, title=title)


def _data_url(url: str, where: str) -> AnthropicBase64Source:
    """`data:<media type>[;param…];base64,<data>` → a base64 source."""
    header, comma, data = url.removeprefix("data:").partition(",")
    media_type, *params = header.split(";")
    if not url.startswith("data:") or not comma or "base64" not in params or not media_type:
        raise InvalidRequest(
            f"'{where}' must be an http(s) URL or a base64 data URL.",
            param=where,
            code="invalid_value",
        )
    return AnthropicBase64Source(media_type=media_type, data=data)


def _system(texts: list[str]) -> str | list[AnthropicTextBlock] | UnsetType:
    if not texts:
        return UNSET
    if len(texts) == 1:
        return texts[0]
    return [AnthropicTextBlock(text=text) for text in texts]


def _stop_sequences(request: ChatRequest) -> list[str] | UnsetType:
    stop = request.stop
    if isinstance(stop, str):
        return [stop]
    return stop if isinstance(stop, list) and stop else UNSET


# --- tools, structured output, thinking -----------------------------------------------


def _tools(
    request: ChatRequest,
) -> tuple[list[AnthropicTool], AnthropicToolChoice | None, str | None]:
    tools = [
        AnthropicTool(
            name=tool.function.name,
            description=tool.function.description,
            input_schema=tool.function.parameters
            if isinstance(tool.function.parameters, dict)
            else _EMPTY_SCHEMA,
        )
        for tool in (request.tools if isinstance(request.tools, list) else [])
    ]
    choice = _tool_choice(request)
    json_tool: str | None = None
    if isinstance(request.response_format, JSONSchemaResponseFormat):
        # Anthropic's portable way to a schema-shaped answer: a tool whose input schema
        # is the schema, that the model must call; its input is then the answer
        spec = request.response_format.json_schema
        if any(tool.name == spec.name for tool in tools):
            raise InvalidRequest(
                f"'response_format.json_schema.name' ({spec.name}) is also a tool's name.",
                param="response_format.json_schema.name",
                code="conflicting_fields",
            )
        json_tool = spec.name
        tools.append(
            AnthropicTool(
                name=spec.name,
                description=spec.description
                if isinstance(spec.description, str)
                else JSON_TOOL_DESCRIPTION,
                input_schema=spec.schema if isinstance(spec.schema, dict) else _EMPTY_SCHEMA,
            )
        )
        choice = _json_tool_choice(choice, spec.name, has_client_tools=len(tools) > 1)
    return tools, choice, json_tool


def _tool_choice(request: ChatRequest) -> AnthropicToolChoice | None:
    choice = request.tool_choice
    if isinstance(choice, NamedToolChoice):
        mapped = AnthropicToolChoice(type="tool", name=choice.function.name)
    elif choice == "none":
        return AnthropicToolChoice(type="none")  # takes no parallel-use flag
    elif choice == "required":
        mapped = AnthropicToolChoice(type="any")
    elif choice == "auto" or request.parallel_tool_calls is False:
        mapped = AnthropicToolChoice(type="auto")
    else:
        return None
    if request.parallel_tool_calls is False:
        mapped.disable_parallel_tool_use = True
    return mapped


def _json_tool_choice(
    choice: AnthropicToolChoice | None, json_tool: str, *, has_client_tools: bool
) -> AnthropicToolChoice:
    if choice is not None and choice.type == "tool":
        return choice  # the client named its own tool: that call is the answer it wants
    parallel = choice.disable_parallel_tool_use if choice is not None else UNSET
    if has_client_tools and (choice is None or choice.type in ("auto", "any")):
        # the model may call the client's tools, or answer through the schema tool; a
        # plain text answer would not match the schema
        return AnthropicToolChoice(type="any", disable_parallel_tool_use=parallel)
    return AnthropicToolChoice(type="tool", name=json_tool, disable_parallel_tool_use=parallel)


def forces_tool(request: ChatRequest) -> bool:
    """Anthropic refuses extended thinking with a forced tool call (`any` or `tool`)."""
    if isinstance(request.response_format, JSONSchemaResponseFormat):
        return True
    has_tools = isinstance(request.tools, list) and bool(request.tools)
    return has_tools and (
        request.tool_choice == "required" or isinstance(request.tool_choice, NamedToolChoice)
    )


def thinking_refused(request: ChatRequest) -> bool:
    """Whether Anthropic would refuse extended thinking for this request: with a forced
    tool call, or inside a tool-use loop, whose assistant turn must open with the signed
    thinking block Claude wrote (OpenAI messages cannot carry it back)."""
    return forces_tool(request) or _in_tool_loop(request)


def _in_tool_loop(request: ChatRequest) -> bool:
    for message in reversed(request.messages):
        if isinstance(message, AssistantMessage):
            return isinstance(message.tool_calls, list) and bool(message.tool_calls)
    return False


def thinking_effort(request: ChatRequest) -> str | None:
    effort = request.reasoning_effort
    return effort if isinstance(effort, str) and effort != "none" else None


def _thinking_budget(
    request: ChatRequest, config: AnthropicConfig, *, strict: bool = True
) -> int | None:
    effort = thinking_effort(request)
    if effort is None or thinking_refused(request):
        return None
    budget = config.thinking_budgets.get(effort)
    if budget is None and strict:
        known = ", ".join(sorted(["none", *config.thinking_budgets]))
        raise InvalidRequest(
            f"Invalid value for 'reasoning_effort': {effort!r}; this provider knows {known}.",
            param="reasoning_effort",
            code="invalid_value",
        )
    return budget
