"""A Responses request on the Chat Completions path: what it becomes and what is left out.

What chat has no place for, but whose absence still gives a valid answer (hosted tools,
`include`, `prompt_cache_key`, history items of hosted tools, ...), is dropped and named to
the client. What only the upstream that holds it could honour (a stored prompt or
conversation, an item reference, a file by id) does not fail the translation: it is
noted as `native_only`, and routing keeps the request to native deployments.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from msgspec import UNSET, Raw

from gateway.chat_decoding import field_error
from gateway.ingress.responses.wire import (
    AdditionalToolsItem,
    AllowedTools,
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionTool,
    InputFile,
    InputImage,
    InputText,
    Kind,
    MessageItem,
    NamedTool,
    OutputTextPart,
    PartKind,
    RefusalPart,
    ResponsesRequest,
    TextConfig,
    TextFormatJSONObject,
    TextFormatJSONSchema,
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
    JSONObjectFormat,
    JSONSchemaFormat,
    JSONSchemaResponseFormat,
    Message,
    NamedFunction,
    NamedToolChoice,
    ResponseFormat,
    SystemMessage,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    ToolMessage,
    UserContentPart,
    UserMessage,
)
from providers.errors import InvalidRequest

_encode = msgspec.json.encode
_kind = msgspec.json.Decoder(Kind)
_part_kind = msgspec.json.Decoder(PartKind)
_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "message": msgspec.json.Decoder(MessageItem),
    "function_call": msgspec.json.Decoder(FunctionCallItem),
    "function_call_output": msgspec.json.Decoder(FunctionCallOutputItem),
    "additional_tools": msgspec.json.Decoder(AdditionalToolsItem),
    "input_text": msgspec.json.Decoder(InputText),
    "output_text": msgspec.json.Decoder(OutputTextPart),
    "refusal": msgspec.json.Decoder(RefusalPart),
    "input_image": msgspec.json.Decoder(InputImage),
    "input_file": msgspec.json.Decoder(InputFile),
    "function": msgspec.json.Decoder(FunctionTool),
    "named": msgspec.json.Decoder(NamedTool),
    "allowed_tools": msgspec.json.Decoder(AllowedTools),
    "extensions": msgspec.json.Decoder(dict[str, dict[str, Raw]] | None),
}
# history items that carry nothing the chat path can send on: the model's reasoning
# (chat takes none back) is left out without a word, as OpenAI leaves it out of a
# model that does not reason
_SILENT_ITEMS = frozenset({"reasoning"})
# top-level fields the translation carries (or that the gateway consumes); any other
# field a client sends is named as dropped
_CARRIED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "stream",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "text",
        "reasoning",
        "max_output_tokens",
        "temperature",
        "top_p",
        "metadata",
        "user",
        "store",
        "previous_response_id",
        # only asks for padding on stream events, which the gateway never adds
        "stream_options",
        # a cap on hosted tool calls, of which chat has none
        "max_tool_calls",
        # the gateway's own extensions
        "models",
        "gateway",
        "routing",
        "provider",
        "extensions",
    }
)
# carried only with these values (anything else is dropped and named)
_HARMLESS: dict[str, tuple[bytes, ...]] = {
    "truncation": (b'"disabled"', b"null"),
    "background": (b"false", b"null"),
    "top_logprobs": (b"0", b"null"),
    "include": (b"[]", b"null"),
}
# what only the upstream holding it can resolve
_NATIVE_FIELDS = {
    "conversation": "a stored conversation",
    "prompt": "a stored prompt template",
}
_NULL = Raw(b"null")


class NativeOnly(msgspec.Struct, frozen=True, kw_only=True):
    """Why only a deployment that speaks the Responses API can serve the request."""

    param: str
    reason: str


class ChatTranslation(msgspec.Struct, kw_only=True):
    request: ChatRequest
    dropped: tuple[str, ...] = ()  # Responses parameters the chat path leaves out
    native_only: NativeOnly | None = None
    summary: bool = False  # reasoning goes out as a summary (`reasoning.summary` was asked)


def translate(
    request: ResponsesRequest, fields: dict[str, Raw], history: Iterable[Raw] = ()
) -> ChatTranslation:
    """`history`: the input and output items of the previous response, if continued."""
    translator = _Translator()
    return translator.run(request, fields, list(history))


class _Translator:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.dropped: dict[str, None] = {}  # ordered, without repeats
        self.native_only: NativeOnly | None = None
        self.tools: list[Tool] = []
        self._assistant: AssistantMessage | None = None  # function calls join it
        self._pending_parts: list[UserContentPart] = []  # images from tool outputs

    def drop(self, name: str) -> None:
        self.dropped[name] = None

    def needs_native(self, param: str, reason: str) -> None:
        if self.native_only is None:
            self.native_only = NativeOnly(param=param, reason=reason)

    # --- the whole request ---------------------------------------------------------

    def run(
        self, request: ResponsesRequest, fields: dict[str, Raw], history: list[Raw]
    ) -> ChatTranslation:
        self._top_level(fields)
        if isinstance(request.tools, list):
            for index, tool in enumerate(request.tools):
                self._tool(tool, f"tools[{index}]")
        if isinstance(request.instructions, str):
            self.messages.append(SystemMessage(content=request.instructions))
        for index, item in enumerate(history):
            self._item(item, f"previous_response_id (item {index})")
        if isinstance(request.input, str):
            self._close_turn()
            self.messages.append(UserMessage(content=request.input))
        elif isinstance(request.input, list):
            for index, item in enumerate(request.input):
                self._item(item, f"input[{index}]")
        self._close_turn()
        if not self.messages:
            raise InvalidRequest(
                "The input holds no message to answer.", param="input", code="missing_field"
            )
        values = self._chat_fields(request, fields)
        chat = ChatRequest(**values, raw={k: Raw(_encode(v)) for k, v in values.items()})
        reasoning = request.reasoning
        summary = not isinstance(reasoning, msgspec.UnsetType) and bool(
            reasoning.summary or reasoning.generate_summary
        )
        return ChatTranslation(
            request=chat,
            dropped=tuple(self.dropped),
            native_only=self.native_only,
            summary=summary,
        )

    def _top_level(self, fields: dict[str, Raw]) -> None:
        for name, value in fields.items():
            if name in _CARRIED or value == _NULL:
                continue
            if name in _NATIVE_FIELDS:
                self.needs_native(name, _NATIVE_FIELDS[name])
            elif name == "background" and value != Raw(b"false"):
                self.needs_native(name, "a background response (polled later)")
            elif bytes(value) not in _HARMLESS.get(name, ()):
                self.drop(name)

    def _chat_fields(self, request: ResponsesRequest, fields: dict[str, Raw]) -> dict[str, Any]:
        values: dict[str, Any] = {"messages": self.messages}
        if isinstance(request.model, str):
            values["model"] = request.model
        if request.stream:
            values["stream"] = True
        for name in ("temperature", "top_p", "user"):
            value = getattr(request, name)
            if not isinstance(value, msgspec.UnsetType):
                values[name] = value
        if isinstance(request.max_output_tokens, int):
            values["max_completion_tokens"] = request.max_output_tokens
        reasoning = request.reasoning
        if not isinstance(reasoning, msgspec.UnsetType) and reasoning.effort is not None:
            values["reasoning_effort"] = reasoning.effort
        if isinstance(request.text, TextConfig):
            response_format = self._response_format(request.text)
            if response_format is not None:
                values["response_format"] = response_format
        choice = self._tool_choice(request) if self.tools else None  # may narrow the tools
        if self.tools:
            values["tools"] = self.tools
            if choice is not None:
                values["tool_choice"] = choice
            if isinstance(request.parallel_tool_calls, bool):
                values["parallel_tool_calls"] = request.parallel_tool_calls
        extensions = fields.get("extensions")
        if extensions is not None:
            decoded = _decode("extensions", extensions, "extensions")
            if decoded is not None:
                values["extensions"] = decoded
        return values

    # --- input items ---------------------------------------------------------------

    def _item(self, raw: Raw, where: str) -> None:
        kind = _decode_kind(_kind, raw, where).type
        if kind == "function_call":
            self._function_call(_decode(kind, raw, where))
            return
        if kind != "function_call_output":
            self._close_turn()
        if kind == "message":
            self._message(_decode(kind, raw, where), where)
        elif kind == "function_call_output":
            self._function_output(_decode(kind, raw, where), where)
        elif kind == "additional_tools":
            item: AdditionalToolsItem = _decode(kind, raw, where)
            for index, tool in enumerate(item.tools):
                self._tool(tool, f"{where}.tools[{index}]")
        elif kind == "item_reference":
            self.needs_native(where, "a reference to an item stored by the upstream")
        elif kind not in _SILENT_ITEMS:
            self.drop(f"input.{kind}")

    def _close_turn(self) -> None:
        """Ends a run of function calls and their outputs: images that tool outputs
        carried follow it as a user message (chat's tool messages hold text only)."""
        self._assistant = None
        if self._pending_parts:
            self.messages.append(UserMessage(content=self._pending_parts))
            self._pending_parts = []

    def _message(self, item: MessageItem, where: str) -> None:
        role = item.role
        if role == "assistant":
            message = AssistantMessage(content=None)
            if isinstance(item.content, str):
                message.content = item.content
            else:
                self._assistant_parts(message, item.content, where)
            self.messages.append(message)
            self._assistant = message
        elif role == "user":
            content = item.content
            parts = content if isinstance(content, str) else self._user_parts(content, where)
            self.messages.append(UserMessage(content=parts))
        else:
            # developer instructions are system instructions to every chat API
            text = item.content
            if not isinstance(text, str):
                text = "".join(self._texts(text, where))
            self.messages.append(SystemMessage(content=text))

    def _assistant_parts(self, message: AssistantMessage, parts: list[Raw], where: str) -> None:
        texts, refusals = [], []
        for index, raw in enumerate(parts):
            at = f"{where}.content[{index}]"
            kind = _decode_kind(_part_kind, raw, at).type
            if kind in ("output_text", "input_text"):
                texts.append(_decode(kind, raw, at).text)
            elif kind == "refusal":
                refusals.append(_decode(kind, raw, at).refusal)
            else:
                self.drop(f"input.content.{kind}")
        message.content = "".join(texts) if texts else None
        if refusals:
            message.refusal = "".join(refusals)

    def _user_parts(self, parts: list[Raw], where: str) -> list[UserContentPart]:
        converted: list[UserContentPart] = []
        for index, raw in enumerate(parts):
            part = self._user_part(raw, f"{where}.content[{index}]")
            if part is not None:
                converted.append(part)
        return converted

    def _user_part(self, raw: Raw, at: str) -> UserContentPart | None:
        kind = _decode_kind(_part_kind, raw, at).type
        if kind in ("input_text", "output_text"):
            return TextPart(text=_decode(kind, raw, at).text)
        if kind == "input_image":
            image: InputImage = _decode(kind, raw, at)
            if image.image_url is None:
                self.needs_native(f"{at}.file_id", "an image in the upstream's file storage")
                return None
            url = ImageURL(url=image.image_url)
            if image.detail is not None:
                # chat has no "original": its finest is "high"
                url.detail = "high" if image.detail == "original" else image.detail
            return ImagePart(image_url=url)
        if kind == "input_file":
            file: InputFile = _decode(kind, raw, at)
            if file.file_data is None and file.file_id is None:
                self.needs_native(f"{at}.file_url", "a file fetched by the upstream")
                return None
            return FilePart(
                file=FileRef(
                    file_data=_or_unset(file.file_data),
                    file_id=_or_unset(file.file_id),
                    filename=_or_unset(file.filename),
                )
            )
        self.needs_native(f"{at}.type", f"content of type {kind}")
        return None

    def _texts(self, parts: list[Raw], where: str) -> list[str]:
        texts = []
        for index, raw in enumerate(parts):
            at = f"{where}.content[{index}]"
            kind = _decode_kind(_part_kind, raw, at).type
            if kind in ("input_text", "output_text"):
                texts.append(_decode(kind, raw, at).text)
            else:
                self.needs_native(f"{at}.type", f"{kind} content in an instruction")
        return texts

    def _function_call(self, item: FunctionCallItem) -> None:
        function = FunctionCall(name=item.name, arguments=item.arguments)
        call = ToolCall(id=item.call_id, function=function)
        assistant = self._assistant
        if assistant is None:
            self._close_turn()
            assistant = AssistantMessage(content=None, tool_calls=[])
            self.messages.append(assistant)
            self._assistant = assistant
        if isinstance(assistant.tool_calls, list):
            assistant.tool_calls.append(call)
        else:
            assistant.tool_calls = [call]

    def _function_output(self, item: FunctionCallOutputItem, where: str) -> None:
        self._assistant = None  # a call after an output starts the next assistant turn
        if isinstance(item.output, str):
            self.messages.append(ToolMessage(content=item.output, tool_call_id=item.call_id))
            return
        texts: list[str] = []
        for index, raw in enumerate(item.output):
            part = self._user_part(raw, f"{where}.output[{index}]")
            if isinstance(part, TextPart):
                texts.append(part.text)
            elif part is not None:
                self._pending_parts.append(part)
        self.messages.append(ToolMessage(content="".join(texts), tool_call_id=item.call_id))

    # --- tools and formats ---------------------------------------------------------

    def _tool(self, raw: Raw, where: str) -> None:
        kind = _decode_kind(_part_kind, raw, where).type
        if kind != "function":
            self.drop(f"tools.{kind}")
            return
        tool: FunctionTool = _decode(kind, raw, where)
        self.tools.append(
            Tool(
                function=FunctionDefinition(
                    name=tool.name,
                    description=_or_unset(tool.description),
                    parameters=_or_unset(tool.parameters),
                    strict=tool.strict if tool.strict is not None else UNSET,
                )
            )
        )

    def _tool_choice(self, request: ResponsesRequest) -> ToolChoice | None:
        choice = request.tool_choice
        if isinstance(choice, msgspec.UnsetType):
            return None
        if isinstance(choice, str):
            return choice
        kind = choice.get("type")
        if kind == Raw(b'"function"'):
            named: NamedTool = _decode("named", Raw(_encode(choice)), "tool_choice")
            return NamedToolChoice(function=NamedFunction(name=named.name or ""))
        if kind == Raw(b'"allowed_tools"'):
            allowed: AllowedTools = _decode("allowed_tools", Raw(_encode(choice)), "tool_choice")
            names = {t.name for t in allowed.tools if t.type == "function"}
            self.tools = [t for t in self.tools if t.function.name in names]
            return allowed.mode
        self.drop("tool_choice")  # a hosted, custom or MCP tool, none of which chat has
        return None

    def _response_format(self, text: TextConfig) -> ResponseFormat | None:
        if text.verbosity is not None:
            self.drop("text.verbosity")
        fmt = text.format
        if isinstance(fmt, TextFormatJSONSchema):
            return JSONSchemaResponseFormat(
                json_schema=JSONSchemaFormat(
                    name=fmt.name,
                    schema=fmt.schema,
                    description=_or_unset(fmt.description),
                    strict=fmt.strict if fmt.strict is not None else UNSET,
                )
            )
        if isinstance(fmt, TextFormatJSONObject):
            return JSONObjectFormat()
        return None  # plain text is chat's default


def _or_unset(value: Any) -> Any:
    return UNSET if value is None else value


def _decode_kind(decoder: msgspec.json.Decoder[Any], raw: Raw, where: str) -> Any:
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise field_error(where, exc) from None
    except msgspec.DecodeError:  # pragma: no cover - items are Raw slices of valid JSON
        raise InvalidRequest(f"'{where}' is not valid JSON.", param=where) from None


def _decode(kind: str, raw: Raw, where: str) -> Any:
    try:
        return _DECODERS[kind].decode(raw)
    except msgspec.ValidationError as exc:
        raise field_error(where, exc) from None
