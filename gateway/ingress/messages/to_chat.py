"""Messages API request → the gateway's OpenAI-shaped `ChatRequest`.

Routing plans every Messages request with this translation (so capabilities, limits
and prices apply as on chat), and deployments that do not speak the Messages API are
sent it. The inverse of `providers/anthropic/request.py` (chat → Anthropic), with the
same rules read the other way: every system text goes to one system message; a user
turn's `tool_result` blocks become tool messages, before what else the turn holds; an
assistant turn's `tool_use` blocks become tool calls with the input's own bytes as the
arguments; `thinking` is reasoning text, its signature has no place.

What chat has no field for is left out and named (Messages names, as the client sent
them): server tools, `cache_control`, `top_k`, `container`, beta flags, block types
without a counterpart, and every field this module does not know.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, Raw

from gateway.ingress.messages.decoding import MessagesInput
from gateway.ingress.messages.wire import (
    MessagesBlock,
    MessagesMessage,
    MessagesRequest,
    MessagesSource,
    MessagesTool,
)
from providers.chat_types import (
    AssistantMessage,
    ChatRequest,
    FilePart,
    FileRef,
    FunctionCall,
    FunctionDefinition,
    ImagePart,
    ImageURL,
    JSONSchemaFormat,
    JSONSchemaResponseFormat,
    Message,
    NamedFunction,
    NamedToolChoice,
    SystemMessage,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    ToolMessage,
    UserContentPart,
    UserMessage,
)

_encode = msgspec.json.encode
# Messages fields this translation carries over (others are named as dropped)
_TRANSLATED = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "tools",
        "tool_choice",
        "thinking",
        "metadata",
        "output_config",
    }
)
# OpenAI takes at most four stop sequences
_MAX_STOP = 4
# extended-thinking budget → OpenAI `reasoning_effort`: the chat → Anthropic table
# (providers/anthropic/config.py) read backwards, budgets at or above each step
_EFFORT_BY_BUDGET = ((16384, "high"), (4096, "medium"), (0, "low"))
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
_SCHEMA_NAME = "output"  # OpenAI requires a name; Messages' output format has none
_ANY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


class Translation(msgspec.Struct, kw_only=True):
    chat: ChatRequest
    dropped: list[str]  # Messages fields (and parts) left out, as the client names them
    # a chat parameter's Messages name, to name what a deployment drops in the client's
    # terms (`reasoning_effort` came from `thinking` or `output_config`)
    names: dict[str, str]

    def messages_names(self, chat_params: tuple[str, ...]) -> list[str]:
        return [self.names.get(name, name) for name in chat_params]


class _Dropped:
    """Names left out, each once, in the order met."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def add(self, name: str) -> None:
        if name not in self.names:
            self.names.append(name)

    def cache_control(self, marked: Raw | msgspec.UnsetType) -> None:
        if isinstance(marked, Raw):
            self.add("cache_control")


def to_chat(source: MessagesInput, betas: tuple[str, ...] = ()) -> Translation:
    request = source.request
    dropped = _Dropped()
    for name in source.fields:
        if name not in _TRANSLATED:
            dropped.add(name)
    for beta in betas:
        dropped.add(f"anthropic-beta:{beta}")
    names = {"max_tokens": "max_tokens", "stop": "stop_sequences", "user": "metadata"}
    fields: dict[str, Any] = {"messages": _messages(request, dropped)}
    if isinstance(request.model, str):
        fields["model"] = request.model
    if source.stream:
        fields["stream"] = True
    if isinstance(request.max_tokens, int):
        # 0 asks Anthropic only to fill its prompt cache; the closest chat asks is 1 token
        fields["max_tokens"] = max(request.max_tokens, 1)
    for name in ("temperature", "top_p"):
        value = getattr(request, name)
        if isinstance(value, float | int):
            fields[name] = value
    if isinstance(request.stop_sequences, list) and request.stop_sequences:
        fields["stop"] = request.stop_sequences[:_MAX_STOP]
        if len(request.stop_sequences) > _MAX_STOP:
            dropped.add("stop_sequences")
    _add_tools(request, fields, dropped, names)
    _add_reasoning(request, fields, names)
    _add_output_format(request, fields, names)
    if request.metadata is not None and request.metadata.user_id:
        fields["user"] = request.metadata.user_id
    chat = ChatRequest(
        **fields,
        extensions=source.extensions if source.extensions is not None else UNSET,
        raw={name: Raw(_encode(value)) for name, value in fields.items()},
    )
    return Translation(chat=chat, dropped=dropped.names, names=names)


# --- messages -------------------------------------------------------------------------


def _messages(request: MessagesRequest, dropped: _Dropped) -> list[Message]:
    out: list[Message] = []
    if request.system is not None:
        out.extend(_system(request.system, dropped, "system"))
    assert isinstance(request.messages, list)  # decoding requires them
    for message in request.messages:
        if message.role == "user":
            out.extend(_user_turn(message, dropped))
        elif message.role == "assistant":
            out.append(_assistant_turn(message, dropped))
        else:
            out.extend(_system(message.content, dropped, "messages"))
    return out


def _system(content: str | list[MessagesBlock], dropped: _Dropped, where: str) -> list[Message]:
    if isinstance(content, str):
        return [SystemMessage(content=content)] if content else []
    texts = []
    for block in content:
        dropped.cache_control(block.cache_control)
        if block.type == "text" and block.text:
            texts.append(block.text)
        elif block.type != "text":
            dropped.add(f"{where}:{block.type}")
    # one string: some OpenAI-compatible servers take no list as system content
    return [SystemMessage(content="\n\n".join(texts))] if texts else []


def _user_turn(message: MessagesMessage, dropped: _Dropped) -> list[Message]:
    if isinstance(message.content, str):
        return [UserMessage(content=message.content)]
    results: list[Message] = []
    parts: list[UserContentPart] = []
    for block in message.content:
        dropped.cache_control(block.cache_control)
        if block.type == "tool_result":
            text, images = _tool_result(block, dropped)
            results.append(ToolMessage(content=text, tool_call_id=block.tool_use_id or ""))
            parts.extend(images)  # a tool message carries text only: images follow it
        else:
            part = _user_part(block, dropped)
            if part is not None:
                parts.append(part)
    if parts:
        # tool messages must directly follow the assistant's calls: the rest comes after
        content: str | list[UserContentPart] = (
            parts[0].text if len(parts) == 1 and isinstance(parts[0], TextPart) else parts
        )
        results.append(UserMessage(content=content))
    return results


def _tool_result(block: MessagesBlock, dropped: _Dropped) -> tuple[str, list[UserContentPart]]:
    content = block.content
    if content is None or isinstance(content, str):
        return content or "", []
    texts: list[str] = []
    images: list[UserContentPart] = []
    for inner in content:
        dropped.cache_control(inner.cache_control)
        part = _user_part(inner, dropped)
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif part is not None:
            images.append(part)
    return "\n".join(texts), images


def _user_part(block: MessagesBlock, dropped: _Dropped) -> UserContentPart | None:
    if block.type == "text":
        return TextPart(text=block.text or "")
    source = block.source
    if block.type == "image" and source is not None:
        url = _source_url(source)
        if url is not None:
            return ImagePart(image_url=ImageURL(url=url))
    if block.type == "document" and source is not None:
        return _document(block, source, dropped)
    dropped.add(f"messages:{block.type}")
    return None


def _source_url(source: MessagesSource) -> str | None:
    if source.type == "base64" and source.media_type and source.data is not None:
        return f"data:{source.media_type};base64,{source.data}"
    if source.type == "url" and source.url:
        return source.url
    return None  # a `file` source: an Anthropic Files API id means nothing elsewhere


def _document(
    block: MessagesBlock, source: MessagesSource, dropped: _Dropped
) -> UserContentPart | None:
    if source.type == "text" and source.data is not None:
        return TextPart(text=source.data)
    if source.type == "content" and source.content is not None:
        if isinstance(source.content, str):
            return TextPart(text=source.content)
        texts = [inner.text or "" for inner in source.content if inner.type == "text"]
        return TextPart(text="\n".join(texts))
    url = _source_url(source)
    if url is not None and url.startswith("data:"):
        name = block.title if block.title else UNSET
        return FilePart(file=FileRef(file_data=url, filename=name))
    dropped.add(f"document:{source.type}")
    return None


def _assistant_turn(message: MessagesMessage, dropped: _Dropped) -> AssistantMessage:
    if isinstance(message.content, str):
        return AssistantMessage(content=message.content)
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    for block in message.content:
        dropped.cache_control(block.cache_control)
        if block.type == "text":
            texts.append(block.text or "")
        elif block.type == "thinking":
            reasoning.append(block.thinking or "")
        elif block.type == "tool_use" and block.id and block.name:
            arguments = bytes(block.input).decode() if isinstance(block.input, Raw) else "{}"
            calls.append(
                ToolCall(id=block.id, function=FunctionCall(name=block.name, arguments=arguments))
            )
        else:  # redacted_thinking, server tool calls and their results
            dropped.add(f"messages:{block.type}")
    return AssistantMessage(
        content="".join(texts) if texts else None,
        tool_calls=calls or UNSET,
        reasoning_content="".join(reasoning) if reasoning else UNSET,
    )


# --- tools, reasoning, output format --------------------------------------------------


def _add_tools(
    request: MessagesRequest, fields: dict[str, Any], dropped: _Dropped, names: dict[str, str]
) -> None:
    tools: list[Tool] = []
    for tool in request.tools if isinstance(request.tools, list) else []:
        dropped.cache_control(tool.cache_control)
        if tool.type in (None, "custom"):
            tools.append(_tool(tool))
        else:
            dropped.add(f"tools:{tool.name}")  # a server tool: the upstream would run it
    if tools:
        fields["tools"] = tools
        names["tools"] = "tools"
    choice = request.tool_choice
    if choice is None or not tools:
        return
    names["tool_choice"] = names["parallel_tool_calls"] = "tool_choice"
    fields["tool_choice"] = _tool_choice(choice.type, choice.name)
    if choice.disable_parallel_tool_use:
        fields["parallel_tool_calls"] = False


def _tool_choice(kind: str, name: str | None) -> ToolChoice:
    if kind == "tool" and name:
        return NamedToolChoice(function=NamedFunction(name=name))
    if kind == "any":
        return "required"
    return "none" if kind == "none" else "auto"


def _tool(tool: MessagesTool) -> Tool:
    return Tool(
        function=FunctionDefinition(
            name=tool.name,
            description=tool.description if tool.description is not None else UNSET,
            parameters=tool.input_schema if tool.input_schema is not None else _ANY_OBJECT,
            strict=tool.strict if tool.strict is not None else UNSET,
        )
    )


def _add_reasoning(request: MessagesRequest, fields: dict[str, Any], names: dict[str, str]) -> None:
    """`output_config.effort` is the newer control and wins over a thinking budget."""
    config = request.output_config
    effort = None if config is None else config.effort
    if effort is not None and effort in _EFFORTS:
        fields["reasoning_effort"] = _EFFORTS[effort]
        names["reasoning_effort"] = "output_config.effort"
        return
    thinking = request.thinking
    if thinking is None or thinking.type == "disabled":
        return
    budget = thinking.budget_tokens
    if thinking.type == "adaptive" or budget is None:
        fields["reasoning_effort"] = "medium"  # the model decides: the middle setting
    else:
        fields["reasoning_effort"] = next(e for step, e in _EFFORT_BY_BUDGET if budget >= step)
    names["reasoning_effort"] = "thinking"


def _add_output_format(
    request: MessagesRequest, fields: dict[str, Any], names: dict[str, str]
) -> None:
    config = request.output_config
    if config is None or config.format is None:
        return
    schema = config.format.schema
    fields["response_format"] = JSONSchemaResponseFormat(
        json_schema=JSONSchemaFormat(
            name=_SCHEMA_NAME, schema=schema if schema is not None else _ANY_OBJECT, strict=True
        )
    )
    names["response_format"] = "output_config.format"
