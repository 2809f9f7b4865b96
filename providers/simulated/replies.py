"""What the simulated provider answers a chat request, honouring what clients test with:

- `tools`: a well-formed call when `tool_choice` asks for one (`required`, or a named
  function), and with `auto` (or none) when the last message is the user's and a tool's
  name or description shares a word with it: the best-matching tool, its arguments an
  instance of the tool's parameter schema. After a tool's result it answers in text.
- `response_format`: `json_schema` gets JSON valid against the schema, `json_object` a
  JSON object, and text gets whole sentences of the provider's text.
- `max_tokens` / `max_completion_tokens`: `finish_reason: length` only when the limit
  cuts the answer (text or JSON alike, as a real model is cut); otherwise `stop` (or
  `tool_calls`).

Everything is deterministic for a given request.
"""

from __future__ import annotations

import json
import re

import msgspec

from providers.chat_types import (
    ChatRequest,
    FunctionCall,
    FunctionMessage,
    JSONObjectFormat,
    JSONSchemaResponseFormat,
    NamedToolChoice,
    TextPart,
    Tool,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from providers.errors import UpstreamRejectedRequest
from providers.simulated.json_instance import InstanceError, instance
from providers.simulated.text import write

_WORD = re.compile(r"[a-z0-9]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_JSON_TOKEN_CHARS = 4  # a token is about four characters of JSON


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    pieces: list[str]  # the content's tokens, or the tool call's argument pieces
    finish_reason: str
    tool_call: ToolCall | None = None  # arguments in full (as far as the limit allowed)

    @property
    def content(self) -> str | None:
        return None if self.tool_call is not None else "".join(self.pieces)


def _words(text: str) -> set[str]:
    return set(_WORD.findall(_CAMEL.sub(" ", text).replace("_", " ").lower()))


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.text for part in content if isinstance(part, TextPart))
    return ""


def _best_tool(tools: list[Tool], said: str) -> tuple[Tool, int]:
    """The tool whose name and description share the most words with `said` (the first
    one on a tie), and how many."""
    wanted = _words(said)
    scored = [
        (len(wanted & _words(f"{t.function.name} {t.function.description or ''}")), -i, t)
        for i, t in enumerate(tools)
    ]
    score, _, tool = max(scored, key=lambda s: (s[0], s[1]))
    return tool, score


def chosen_tool(request: ChatRequest) -> Tool | None:
    tools = request.tools if isinstance(request.tools, list) else []
    choice = request.tool_choice
    if not tools or choice == "none":
        return None
    if isinstance(choice, NamedToolChoice):
        named = [t for t in tools if t.function.name == choice.function.name]
        if not named:
            raise UpstreamRejectedRequest(
                f"tool_choice names '{choice.function.name}', which is not in tools",
                param="tool_choice",
            )
        return named[0]
    last = request.messages[-1]
    said = _text_of(last.content) if isinstance(last, UserMessage) else ""
    tool, score = _best_tool(tools, said)
    if choice == "required":
        return tool
    # auto: call a tool the user's last words point at; after a tool's result, answer
    return tool if isinstance(last, UserMessage) and score > 0 else None


def _pieces(text: str) -> list[str]:
    return [text[i : i + _JSON_TOKEN_CHARS] for i in range(0, len(text), _JSON_TOKEN_CHARS)]


def _cut(pieces: list[str], limit: int | None, finished: str) -> tuple[list[str], str]:
    if limit is not None and limit < len(pieces):
        return pieces[:limit], "length"
    return pieces, finished


def _schema_instance(schema: dict[str, object], what: str) -> str:
    try:
        return json.dumps(instance(schema))
    except (InstanceError, RecursionError, KeyError, TypeError) as exc:
        raise UpstreamRejectedRequest(
            f"the simulated model cannot satisfy the {what}: {exc}", param=what
        ) from exc


def _tool_reply(request: ChatRequest, tool: Tool, call_id: str) -> Reply:
    schema = tool.function.parameters
    arguments = _schema_instance(
        schema if isinstance(schema, dict) else {"type": "object"}, "tools"
    )
    pieces, finish_reason = _cut(_pieces(arguments), request.output_limit, "tool_calls")
    call = ToolCall(
        id=call_id, function=FunctionCall(name=tool.function.name, arguments="".join(pieces))
    )
    return Reply(pieces=pieces, finish_reason=finish_reason, tool_call=call)


def _after_tool(request: ChatRequest) -> str:
    """What the answer opens with after a tool's result: the result itself."""
    last = request.messages[-1]
    said = _text_of(last.content).strip() if isinstance(last, ToolMessage | FunctionMessage) else ""
    return f"The tool answered: {said.rstrip('.')}. " if said else ""


def reply_for(request: ChatRequest, text: str, natural: int, call_id: str) -> Reply:
    """`text`: the provider's configured text; `natural`: its answer length in tokens."""
    tool = chosen_tool(request)
    if tool is not None:
        return _tool_reply(request, tool, call_id)
    limit = request.output_limit
    response_format = request.response_format
    if isinstance(response_format, JSONSchemaResponseFormat):
        schema = response_format.json_schema.schema
        document = _schema_instance(schema if isinstance(schema, dict) else {}, "response_format")
        pieces, finish_reason = _cut(_pieces(document), limit, "stop")
        return Reply(pieces=pieces, finish_reason=finish_reason)
    answer = write(_after_tool(request) + text, natural, None)
    if isinstance(response_format, JSONObjectFormat):
        document = json.dumps({"answer": answer.text})
        pieces, finish_reason = _cut(_pieces(document), limit, "stop")
        return Reply(pieces=pieces, finish_reason=finish_reason)
    pieces, finish_reason = _cut(answer.tokens, limit, "stop")
    return Reply(pieces=pieces, finish_reason=finish_reason)
