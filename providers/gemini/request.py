"""OpenAI chat request → Gemini `generateContent` body."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from msgspec import Raw

from providers.base import ProviderCall
from providers.chat_types import (
    AssistantMessage,
    AudioPart,
    ChatRequest,
    DeveloperMessage,
    FilePart,
    ImagePart,
    JSONObjectFormat,
    JSONSchemaResponseFormat,
    NamedToolChoice,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from providers.errors import InvalidRequest
from providers.gemini.schema import gemini_schema
from providers.gemini.wire import (
    GeminiBlob,
    GeminiContent,
    GeminiFileData,
    GeminiFunctionCall,
    GeminiFunctionCallingConfig,
    GeminiFunctionDeclaration,
    GeminiFunctionResponse,
    GeminiGenerationConfig,
    GeminiPart,
    GeminiRequest,
    GeminiThinkingConfig,
    GeminiTool,
    GeminiToolConfig,
)

_encode = msgspec.json.encode
_fields = msgspec.json.Decoder(dict[str, Raw])
_raw_list = msgspec.json.Decoder(list[Raw])
_int: msgspec.json.Decoder[int | None] = msgspec.json.Decoder(int | None)

# Gemini reads images from an http(s) URL by the type it is told; the extension is the
# only hint an OpenAI image part carries
_IMAGE_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "heic": "image/heic",
    "heif": "image/heif",
}
_FILE_TYPES = {**_IMAGE_TYPES, "pdf": "application/pdf", "txt": "text/plain"}
_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def _extension(url: str) -> str:
    path = url.split("?", 1)[0].split("#", 1)[0]
    last = path.rsplit("/", 1)[-1]
    return last.rsplit(".", 1)[-1].lower() if "." in last else ""


def _data_url(url: str, param: str) -> GeminiBlob:
    """`data:<type>;base64,<data>` → inline bytes."""
    header, comma, data = url[len("data:") :].partition(",")
    mime_type, *flags = header.split(";")
    if not comma or "base64" not in flags or not mime_type:
        raise InvalidRequest(
            "Gemini needs data URLs in the form 'data:<media type>;base64,<data>'.", param=param
        )
    return GeminiBlob(mime_type=mime_type, data=data)


def _image(part: ImagePart, param: str) -> GeminiPart:
    url = part.image_url.url
    if url.startswith("data:"):
        return GeminiPart(inline_data=_data_url(url, param))
    if url.startswith(("https://", "http://")):
        mime_type = _IMAGE_TYPES.get(_extension(url), "image/jpeg")
        return GeminiPart(file_data=GeminiFileData(mime_type=mime_type, file_uri=url))
    raise InvalidRequest("Gemini reads images from data: or http(s) URLs only.", param=param)


def _file(part: FilePart, param: str) -> GeminiPart:
    ref = part.file
    if not isinstance(ref.file_data, str):
        raise InvalidRequest(
            "Gemini has no access to OpenAI file ids: send the file as 'file_data'.",
            param=f"{param}.file_id",
        )
    if ref.file_data.startswith("data:"):
        return GeminiPart(inline_data=_data_url(ref.file_data, f"{param}.file_data"))
    name = ref.filename if isinstance(ref.filename, str) else ""
    mime_type = _FILE_TYPES.get(_extension(name))
    if mime_type is None:
        raise InvalidRequest(
            "Send 'file_data' as a data URL so that Gemini knows the file's type.",
            param=f"{param}.file_data",
        )
    return GeminiPart(inline_data=GeminiBlob(mime_type=mime_type, data=ref.file_data))


def _user_parts(message: UserMessage, param: str) -> list[GeminiPart]:
    if isinstance(message.content, str):
        return [GeminiPart(text=message.content)]
    parts = []
    for j, part in enumerate(message.content):
        where = f"{param}.content[{j}]"
        if isinstance(part, TextPart):
            parts.append(GeminiPart(text=part.text))
        elif isinstance(part, ImagePart):
            parts.append(_image(part, f"{where}.image_url.url"))
        elif isinstance(part, AudioPart):
            audio = part.input_audio
            blob = GeminiBlob(mime_type=f"audio/{audio.format}", data=audio.data)
            parts.append(GeminiPart(inline_data=blob))
        else:
            parts.append(_file(part, f"{where}.file"))
    return parts


def _texts(content: str | list[TextPart]) -> list[GeminiPart]:
    if isinstance(content, str):
        return [GeminiPart(text=content)]
    return [GeminiPart(text=part.text) for part in content]


def _text(content: str | list[TextPart] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return "".join(part.text for part in content)


def _arguments(arguments: str, param: str) -> dict[str, Any]:
    """A tool call's JSON arguments as the object Gemini's `args` must be."""
    if not arguments.strip():
        return {}
    try:
        args = msgspec.json.decode(arguments)
    except msgspec.DecodeError:
        raise InvalidRequest(
            "The tool call's arguments are not valid JSON.", param=param, code="invalid_json"
        ) from None
    if not isinstance(args, dict):
        raise InvalidRequest("Gemini needs tool call arguments to be a JSON object.", param=param)
    return args


def _signature(call: ToolCall) -> str | None:
    extra = call.extra_content if isinstance(call.extra_content, dict) else {}
    google = extra.get("google")
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) else None


def _function_result(content: str | list[TextPart] | None) -> dict[str, Any]:
    """A tool's output as Gemini's `response` object: the output itself when it is a
    JSON object, else wrapped as `{"content": text}`."""
    text = _text(content)
    try:
        parsed = msgspec.json.decode(text)
    except msgspec.DecodeError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"content": text}


class _Conversation:
    """Gemini turns alternate: consecutive messages of one role become one turn."""

    def __init__(self) -> None:
        self.system: list[GeminiPart] = []
        self.contents: list[GeminiContent] = []
        self._tool_names: dict[str, str] = {}  # tool call id → function name

    def _add(self, role: str, parts: list[GeminiPart]) -> None:
        if not parts:
            return
        if self.contents and self.contents[-1].role == role:
            self.contents[-1].parts.extend(parts)
        else:
            self.contents.append(GeminiContent(role=role, parts=parts))

    def add(self, message: Any, param: str) -> None:
        if isinstance(message, SystemMessage | DeveloperMessage):
            # Gemini has one system instruction: every system message goes there, in order
            self.system.extend(_texts(message.content))
        elif isinstance(message, UserMessage):
            self._add("user", _user_parts(message, param))
        elif isinstance(message, AssistantMessage):
            self._add("model", self._model_parts(message, param))
        elif isinstance(message, ToolMessage):
            name = self._tool_names.get(message.tool_call_id)
            if name is None:
                raise InvalidRequest(
                    f"No earlier assistant tool call has the id '{message.tool_call_id}'.",
                    param=f"{param}.tool_call_id",
                )
            result = GeminiFunctionResponse(name=name, response=_function_result(message.content))
            # a tool result is the user's side of the conversation to Gemini
            self._add("user", [GeminiPart(function_response=result)])
        else:  # FunctionMessage, the deprecated form of a tool result
            result = GeminiFunctionResponse(
                name=message.name, response=_function_result(message.content)
            )
            self._add("user", [GeminiPart(function_response=result)])

    def _model_parts(self, message: AssistantMessage, param: str) -> list[GeminiPart]:
        parts: list[GeminiPart] = []
        content = message.content
        if isinstance(content, str):
            if content:
                parts.append(GeminiPart(text=content))
        elif content is not None:
            parts += [
                GeminiPart(text=p.text if isinstance(p, TextPart) else p.refusal) for p in content
            ]
        if isinstance(message.tool_calls, list):
            for j, call in enumerate(message.tool_calls):
                where = f"{param}.tool_calls[{j}].function.arguments"
                self._tool_names[call.id] = call.function.name
                function = GeminiFunctionCall(
                    name=call.function.name, args=_arguments(call.function.arguments, where)
                )
                parts.append(GeminiPart(function_call=function, thought_signature=_signature(call)))
        legacy = message.function_call
        if legacy is not None and not isinstance(legacy, msgspec.UnsetType):
            where = f"{param}.function_call.arguments"
            function = GeminiFunctionCall(
                name=legacy.name, args=_arguments(legacy.arguments, where)
            )
            parts.append(GeminiPart(function_call=function))
        return parts


def _tools(request: ChatRequest, dropped: frozenset[str]) -> list[GeminiTool] | None:
    if not isinstance(request.tools, list) or not request.tools or "tools" in dropped:
        return None
    declarations = []
    for i, tool in enumerate(request.tools):
        function = tool.function
        parameters = None
        if isinstance(function.parameters, dict):
            parameters = gemini_schema(function.parameters, param=f"tools[{i}].function.parameters")
            if not parameters.get("properties") and parameters.get("type") == "object":
                parameters = None  # Gemini refuses an object without properties
        description = function.description if isinstance(function.description, str) else None
        declarations.append(
            GeminiFunctionDeclaration(
                name=function.name, description=description, parameters=parameters
            )
        )
    return [GeminiTool(function_declarations=declarations)]


def _tool_config(request: ChatRequest, dropped: frozenset[str]) -> GeminiToolConfig | None:
    choice = request.tool_choice
    if isinstance(choice, msgspec.UnsetType) or "tool_choice" in dropped:
        return None
    if isinstance(choice, NamedToolChoice):
        config = GeminiFunctionCallingConfig(
            mode="ANY", allowed_function_names=[choice.function.name]
        )
    else:
        config = GeminiFunctionCallingConfig(mode=_TOOL_MODES[choice])
    return GeminiToolConfig(function_calling_config=config)


def _top_k(request: ChatRequest) -> int | None:
    """`top_k` is no OpenAI field, but many clients send it for the APIs that have one."""
    raw = request.raw.get("top_k")
    if raw is None:
        return None
    try:
        return _int.decode(raw)
    except msgspec.ValidationError:
        raise InvalidRequest("'top_k' must be an integer.", param="top_k") from None


def _thinking(
    request: ChatRequest, budgets: Mapping[str, int], dropped: frozenset[str]
) -> GeminiThinkingConfig | None:
    effort = request.reasoning_effort
    if not isinstance(effort, str) or "reasoning_effort" in dropped:
        return None
    budget = budgets.get(effort)
    if budget is None:
        raise InvalidRequest(
            f"'reasoning_effort' must be one of {', '.join(sorted(budgets))}.",
            param="reasoning_effort",
        )
    if budget == 0:
        return GeminiThinkingConfig(thinking_budget=0)
    # thought summaries are what we return as `reasoning_content`
    return GeminiThinkingConfig(thinking_budget=budget, include_thoughts=True)


def _generation_config(
    request: ChatRequest, budgets: Mapping[str, int], dropped: frozenset[str]
) -> GeminiGenerationConfig | None:
    def sent(name: str, value: Any) -> Any:
        if name in dropped or value is None or isinstance(value, msgspec.UnsetType):
            return None
        return value

    stop = sent("stop", request.stop)
    config = GeminiGenerationConfig(
        stop_sequences=[stop] if isinstance(stop, str) else stop,
        candidate_count=sent("n", request.n),
        max_output_tokens=(
            request.output_limit
            if "max_tokens" not in dropped and "max_completion_tokens" not in dropped
            else None
        ),
        temperature=sent("temperature", request.temperature),
        top_p=sent("top_p", request.top_p),
        top_k=_top_k(request) if "top_k" not in dropped else None,
        seed=sent("seed", request.seed),
        presence_penalty=sent("presence_penalty", request.presence_penalty),
        frequency_penalty=sent("frequency_penalty", request.frequency_penalty),
        thinking_config=_thinking(request, budgets, dropped),
    )
    response_format = sent("response_format", request.response_format)
    if isinstance(response_format, JSONObjectFormat | JSONSchemaResponseFormat):
        config.response_mime_type = "application/json"
    if isinstance(response_format, JSONSchemaResponseFormat):
        schema = response_format.json_schema.schema
        if isinstance(schema, dict):
            config.response_schema = gemini_schema(
                schema, param="response_format.json_schema.schema"
            )
    return config if config != GeminiGenerationConfig() else None


def gemini_request(call: ProviderCall, thinking_budgets: Mapping[str, int]) -> GeminiRequest:
    request = call.request
    dropped = frozenset(call.drop_params)
    conversation = _Conversation()
    for i, message in enumerate(request.messages):
        conversation.add(message, f"messages[{i}]")
    tools = _tools(request, dropped)
    return GeminiRequest(
        contents=conversation.contents,
        system_instruction=GeminiContent(parts=conversation.system)
        if conversation.system
        else None,
        tools=tools,
        tool_config=_tool_config(request, dropped) if tools else None,
        generation_config=_generation_config(request, thinking_budgets, dropped),
    )


def _merge_extension(body: dict[str, Raw], extension: dict[str, Raw]) -> None:
    """`extensions.google` goes to the top level of the body, except that its
    `generationConfig` adds to ours key by key and its `tools` (e.g. `googleSearch`)
    join our function declarations rather than replace them."""
    for key, value in extension.items():
        mine = body.get(key)
        try:
            if key == "generationConfig" and mine is not None:
                merged = {**_fields.decode(mine), **_fields.decode(value)}
                body[key] = Raw(_encode(merged))
            elif key == "tools" and mine is not None:
                body[key] = Raw(_encode([*_raw_list.decode(mine), *_raw_list.decode(value)]))
            else:
                body[key] = value
        except msgspec.ValidationError:
            kind = "an object" if key == "generationConfig" else "a list"
            raise InvalidRequest(
                f"'extensions.google.{key}' must be {kind}.", param=f"extensions.google.{key}"
            ) from None


def gemini_body(call: ProviderCall, thinking_budgets: Mapping[str, int]) -> bytes:
    """The upstream body: the translated request plus the client's `extensions.google`."""
    body = _encode(gemini_request(call, thinking_budgets))
    extensions = call.request.extensions
    extension = extensions.get("google") if isinstance(extensions, dict) else None
    if not extension:
        return body
    fields = _fields.decode(body)
    _merge_extension(fields, extension)
    return _encode(fields)
