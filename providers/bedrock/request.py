"""OpenAI chat request → Bedrock Converse request body."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from msgspec import UNSET, Raw, UnsetType

from providers.anthropic.request import thinking_effort, thinking_refused
from providers.bedrock.config import BedrockConfig
from providers.bedrock.messages import conversation
from providers.bedrock.wire import (
    BedrockClaudeFields,
    BedrockConverseRequest,
    BedrockInferenceConfig,
    BedrockInputSchema,
    BedrockMessage,
    BedrockNamedTool,
    BedrockNoOptions,
    BedrockText,
    BedrockThinking,
    BedrockTool,
    BedrockToolChoice,
    BedrockToolConfig,
    BedrockToolResultBlock,
    BedrockToolSpec,
    BedrockToolUseBlock,
)
from providers.chat_types import (
    ChatRequest,
    JSONObjectFormat,
    JSONSchemaResponseFormat,
    NamedToolChoice,
)
from providers.errors import InvalidRequest

_encode = msgspec.json.encode
_NULL = Raw(b"null")
_EMPTY_SCHEMA = Raw(b'{"type":"object","properties":{}}')
_ANY_INPUT = BedrockInputSchema(Raw(b'{"type":"object"}'))

JSON_OBJECT_INSTRUCTION = "Respond with a single JSON object and nothing else."
JSON_TOOL_DESCRIPTION = "Give your answer by calling this tool: its input is the answer."
# thinking leaves top_p only this much room (Anthropic's documented bounds)
_MIN_TOP_P_WITH_THINKING = 0.95
# Converse takes temperatures up to 1 (OpenAI up to 2): higher ones are sent as its highest
_MAX_TEMPERATURE = 1.0

# request fields translated here; logprobs, top_logprobs and n > 1 are named by the
# capability check (`droppable_unsupported`) instead
_TRANSLATED = frozenset(
    {
        "messages",
        "model",
        "stream",
        "stream_options",  # Converse streams always end with usage
        "temperature",
        "top_p",
        "stop",
        "max_tokens",
        "max_completion_tokens",
        "tools",
        "tool_choice",
        "parallel_tool_calls",  # only `true`, Converse's behaviour; see dropped_params
        "response_format",
        "reasoning_effort",
        "n",
        "logprobs",
        "top_logprobs",
    }
)


class BedrockCall(msgspec.Struct, kw_only=True):
    """The upstream body, and what reading its answer needs to know about it."""

    body: bytes
    # the tool that stands in for `response_format: json_schema`: its input is the answer
    json_tool: str | None = None


def is_anthropic_model(model: str) -> bool:
    """Claude on Bedrock: `anthropic.claude-…`, a cross-region profile (`us.anthropic.…`)
    or an ARN naming either. An application inference profile's ARN does not say."""
    return "anthropic." in model


def build_request(
    request: ChatRequest,
    model: str,
    config: BedrockConfig,
    drop: Iterable[str] = (),
    *,
    request_id: str = "",
) -> BedrockCall:
    dropped = set(drop)
    system, messages = conversation(request.messages)
    if isinstance(request.response_format, JSONObjectFormat):
        system.append(BedrockText(JSON_OBJECT_INSTRUCTION))
    tool_config, json_tool = _tool_config(request, messages)
    budget = None if "reasoning_effort" in dropped else _thinking_budget(request, model, config)
    body = BedrockConverseRequest(
        messages=messages,
        system=system or UNSET,
        inference_config=_inference_config(request, budget, config, dropped),
        tool_config=tool_config if tool_config is not None else UNSET,
        additional_model_request_fields=(
            BedrockClaudeFields(BedrockThinking(budget_tokens=budget))
            if budget is not None
            else UNSET
        ),
        request_metadata={"switchboard_request_id": request_id} if request_id else UNSET,
    )
    return BedrockCall(body=_encode_with_extensions(body, request), json_tool=json_tool)


def dropped_params(request: ChatRequest, *, reasoning: bool) -> list[str]:
    """The client's parameters this translation leaves out, besides the capability ones.
    `reasoning`: whether the deployment can think (only Claude can, through Converse)."""
    dropped = [
        name for name, value in request.raw.items() if name not in _TRANSLATED and value != _NULL
    ]
    if request.parallel_tool_calls is False:
        dropped.append("parallel_tool_calls")  # Converse has no way to forbid them
    effort = thinking_effort(request)
    if effort is None or not reasoning:
        return dropped  # without reasoning, `droppable_unsupported` names the effort
    if thinking_refused(request):
        dropped.append("reasoning_effort")
    else:
        if isinstance(request.temperature, float | int):
            dropped.append("temperature")
        if isinstance(request.top_p, float | int) and request.top_p < _MIN_TOP_P_WITH_THINKING:
            dropped.append("top_p")
    return dropped


# --- tools -------------------------------------------------------------------------------


def _tool_config(
    request: ChatRequest, messages: list[BedrockMessage]
) -> tuple[BedrockToolConfig | None, str | None]:
    tools = [
        BedrockTool(
            BedrockToolSpec(
                name=tool.function.name,
                input_schema=BedrockInputSchema(_schema(tool.function.parameters)),
                description=tool.function.description or UNSET,
                strict=True if tool.function.strict is True else UNSET,
            )
        )
        for tool in (request.tools if isinstance(request.tools, list) else [])
    ]
    choice = request.tool_choice
    json_tool: str | None = None
    if isinstance(request.response_format, JSONSchemaResponseFormat):
        json_tool = _add_json_tool(request.response_format, tools)
    if not tools:
        # Converse refuses tool calls and results without a toolConfig, while OpenAI takes a
        # conversation that used tools without offering any now (e.g. to summarise it)
        history = _tools_in_history(messages)
        return (BedrockToolConfig(history) if history else None), None
    if json_tool is not None:
        choice_for_json = _json_tool_choice(request, json_tool, has_client_tools=len(tools) > 1)
        return BedrockToolConfig(tools, choice_for_json), json_tool
    if choice == "none":
        # Converse cannot forbid tool calls; without tools the model cannot make any,
        # but a conversation holding tool calls or results must still declare them
        if _has_tool_blocks(messages):
            return BedrockToolConfig(tools), None
        return None, None
    return BedrockToolConfig(tools, _tool_choice(request)), None


def _schema(parameters: object) -> Raw:
    return Raw(_encode(parameters)) if isinstance(parameters, dict) else _EMPTY_SCHEMA


def _add_json_tool(response_format: JSONSchemaResponseFormat, tools: list[BedrockTool]) -> str:
    """Converse's portable way to a schema-shaped answer (Anthropic's, too): a tool whose
    input schema is the schema, that the model must call; its input is the answer."""
    spec = response_format.json_schema
    if any(tool.tool_spec.name == spec.name for tool in tools):
        raise InvalidRequest(
            f"'response_format.json_schema.name' ({spec.name}) is also a tool's name.",
            param="response_format.json_schema.name",
            code="conflicting_fields",
        )
    tools.append(
        BedrockTool(
            BedrockToolSpec(
                name=spec.name,
                input_schema=BedrockInputSchema(_schema(spec.schema)),
                description=spec.description
                if isinstance(spec.description, str) and spec.description
                else JSON_TOOL_DESCRIPTION,
                strict=True if spec.strict is True else UNSET,
            )
        )
    )
    return spec.name


def _tool_choice(request: ChatRequest) -> BedrockToolChoice | UnsetType:
    choice = request.tool_choice
    if isinstance(choice, NamedToolChoice):
        return BedrockToolChoice(tool=BedrockNamedTool(choice.function.name))
    if choice == "required":
        return BedrockToolChoice(any=BedrockNoOptions())
    if choice == "auto":
        return BedrockToolChoice(auto=BedrockNoOptions())
    return UNSET  # Converse's default is auto


def _json_tool_choice(
    request: ChatRequest, json_tool: str, *, has_client_tools: bool
) -> BedrockToolChoice | UnsetType:
    choice = request.tool_choice
    if isinstance(choice, NamedToolChoice) and has_client_tools:
        return _tool_choice(request)  # the client named its own tool: that call is the answer
    if has_client_tools and choice != "none":
        # the model may call the client's tools, or answer through the schema tool; a
        # plain text answer would not match the schema
        return BedrockToolChoice(any=BedrockNoOptions())
    return BedrockToolChoice(tool=BedrockNamedTool(json_tool))


def _tools_in_history(messages: list[BedrockMessage]) -> list[BedrockTool]:
    names = {
        block.tool_use.name: None
        for message in messages
        for block in message.content
        if isinstance(block, BedrockToolUseBlock)
    }
    return [BedrockTool(BedrockToolSpec(name=name, input_schema=_ANY_INPUT)) for name in names]


def _has_tool_blocks(messages: list[BedrockMessage]) -> bool:
    return any(
        isinstance(block, BedrockToolUseBlock | BedrockToolResultBlock)
        for message in messages
        for block in message.content
    )


def _thinking_budget(request: ChatRequest, model: str, config: BedrockConfig) -> int | None:
    """Claude's thinking budget for `reasoning_effort`; other models on Converse have no
    common reasoning switch, so for them the effort is dropped (and named)."""
    effort = thinking_effort(request)
    if effort is None or thinking_refused(request) or not is_anthropic_model(model):
        return None
    budget = config.thinking_budgets.get(effort)
    if budget is None:
        known = ", ".join(sorted(["none", *config.thinking_budgets]))
        raise InvalidRequest(
            f"Invalid value for 'reasoning_effort': {effort!r}; this provider knows {known}.",
            param="reasoning_effort",
            code="invalid_value",
        )
    return budget


def _inference_config(
    request: ChatRequest, budget: int | None, config: BedrockConfig, dropped: set[str]
) -> BedrockInferenceConfig | UnsetType:
    settings = BedrockInferenceConfig()
    limit = request.output_limit
    if budget is not None:
        # the budget counts towards the token limit and must be below it
        limit = limit or config.default_max_tokens
        settings.max_tokens = limit + budget if limit <= budget else limit
    elif limit is not None and not {"max_tokens", "max_completion_tokens"} & dropped:
        settings.max_tokens = limit
    # Claude thinks only at the default temperature and with a top_p of at least 0.95
    if (
        budget is None
        and isinstance(request.temperature, float | int)
        and "temperature" not in dropped
    ):
        settings.temperature = min(request.temperature, _MAX_TEMPERATURE)
    if (
        isinstance(request.top_p, float | int)
        and (budget is None or request.top_p >= _MIN_TOP_P_WITH_THINKING)
        and "top_p" not in dropped
    ):
        settings.top_p = request.top_p
    stop = request.stop
    if "stop" not in dropped and stop:
        settings.stop_sequences = [stop] if isinstance(stop, str) else list(stop)
    return settings if settings != BedrockInferenceConfig() else UNSET


def _encode_with_extensions(body: BedrockConverseRequest, request: ChatRequest) -> bytes:
    """`extensions.bedrock` fields go to the body's top level, replacing ours."""
    extra = request.extensions.get("bedrock") if isinstance(request.extensions, dict) else None
    if not extra:
        return _encode(body)
    fields = msgspec.json.decode(_encode(body), type=dict[str, Raw])
    fields.update(extra)
    return _encode(fields)
