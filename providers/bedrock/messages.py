"""OpenAI messages → Converse `system` blocks and alternating user/assistant turns."""

from __future__ import annotations

import re
from typing import Literal

import msgspec
from msgspec import Raw

from providers.bedrock.wire import (
    BedrockAudio,
    BedrockAudioBlock,
    BedrockBytesSource,
    BedrockContentBlock,
    BedrockDocument,
    BedrockDocumentBlock,
    BedrockImage,
    BedrockImageBlock,
    BedrockMessage,
    BedrockText,
    BedrockToolResult,
    BedrockToolResultBlock,
    BedrockToolUse,
    BedrockToolUseBlock,
)
from providers.chat_types import (
    AssistantMessage,
    AudioPart,
    DeveloperMessage,
    FilePart,
    FunctionMessage,
    ImagePart,
    Message,
    RefusalPart,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
)
from providers.errors import InvalidRequest

Role = Literal["user", "assistant"]
_EMPTY_INPUT = Raw(b"{}")
_args_decoder = msgspec.json.Decoder(dict[str, Raw])

# OpenAI media types → Converse formats
_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
_AUDIO_FORMATS = frozenset({"wav", "mp3", "flac", "ogg", "webm", "aac", "m4a", "opus", "pcm"})
# Converse's patterns for a tool use id and a document name
_TOOL_USE_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_.:-]")
_DOCUMENT_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9\s\-()\[\]]")
_SPACES = re.compile(r"\s+")


def conversation(messages: list[Message]) -> tuple[list[BedrockText], list[BedrockMessage]]:
    """System and developer messages, wherever they are, become the `system` blocks;
    the others become turns, consecutive turns of one role merged into one (Converse
    wants user and assistant to alternate, and a tool's results in one user turn)."""
    system: list[BedrockText] = []
    turns: list[BedrockMessage] = []
    for i, message in enumerate(messages):
        if isinstance(message, SystemMessage | DeveloperMessage):
            system += [BedrockText(text) for text in _texts(message.content)]
            continue
        role, blocks = _turn(message, i)
        if not blocks:
            continue  # Converse refuses an empty turn; an empty message says nothing
        if turns and turns[-1].role == role:
            turns[-1].content += blocks
        else:
            turns.append(BedrockMessage(role=role, content=blocks))
    return system, turns


def _turn(message: Message, i: int) -> tuple[Role, list[BedrockContentBlock]]:
    if isinstance(message, UserMessage):
        if isinstance(message.content, str):
            return "user", _text_blocks([message.content])
        return "user", [
            block
            for j, part in enumerate(message.content)
            if (block := _user_part(part, f"messages[{i}].content[{j}]")) is not None
        ]
    if isinstance(message, AssistantMessage):
        return "assistant", _assistant_blocks(message, i)
    if isinstance(message, ToolMessage):
        result = BedrockToolResult(
            tool_use_id=_tool_use_id(message.tool_call_id),
            # text even for JSON: every tool-capable model takes text, and it is lossless
            content=[BedrockText(text) for text in _texts(message.content)]
            or [BedrockText("(empty)")],
        )
        return "user", [BedrockToolResultBlock(result)]
    assert isinstance(message, FunctionMessage)
    raise InvalidRequest(
        "Messages with role 'function' have no Bedrock equivalent; send the function's "
        "result as a 'tool' message answering a tool call.",
        param=f"messages[{i}].role",
    )


def _texts(content: str | list[TextPart] | None) -> list[str]:
    if content is None:
        return []
    if isinstance(content, str):
        return [content] if content else []
    return [part.text for part in content if part.text]


def _text_blocks(texts: list[str]) -> list[BedrockContentBlock]:
    return [BedrockText(text) for text in texts if text]  # Converse refuses blank text


def _assistant_blocks(message: AssistantMessage, i: int) -> list[BedrockContentBlock]:
    blocks: list[BedrockContentBlock] = []
    if isinstance(message.content, str):
        blocks += _text_blocks([message.content])
    elif isinstance(message.content, list):
        blocks += _text_blocks(
            [
                part.refusal if isinstance(part, RefusalPart) else part.text
                for part in message.content
            ]
        )
    if isinstance(message.refusal, str) and not blocks:
        blocks += _text_blocks([message.refusal])
    for j, call in enumerate(message.tool_calls or []):
        blocks.append(
            BedrockToolUseBlock(
                BedrockToolUse(
                    tool_use_id=_tool_use_id(call.id),
                    name=call.function.name,
                    input=_tool_input(
                        call.function.arguments, f"messages[{i}].tool_calls[{j}].function.arguments"
                    ),
                )
            )
        )
    return blocks


def _tool_input(arguments: str, param: str) -> Raw:
    if not arguments.strip():
        return _EMPTY_INPUT  # some clients send "" for a tool without parameters
    try:
        _args_decoder.decode(arguments)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise InvalidRequest(
            f"'{param}' must be a JSON object: Bedrock takes a tool call's input as one.",
            param=param,
        ) from None
    return Raw(arguments.encode())


def _tool_use_id(call_id: str) -> str:
    """Converse takes ids of 1-64 of `[a-zA-Z0-9_.:-]`; another provider's ids may not be,
    and the same mapping on the call and its result keeps the two paired."""
    return _TOOL_USE_ID_UNSAFE.sub("_", call_id)[:64] or "_"


def _user_part(
    part: TextPart | ImagePart | AudioPart | FilePart, param: str
) -> BedrockContentBlock | None:
    if isinstance(part, TextPart):
        return BedrockText(part.text) if part.text else None
    if isinstance(part, ImagePart):
        return _image(part.image_url.url, f"{param}.image_url.url")
    if isinstance(part, AudioPart):
        audio_format = part.input_audio.format.lower()
        if audio_format not in _AUDIO_FORMATS:
            raise InvalidRequest(
                f"'{param}.input_audio.format' {part.input_audio.format!r} is not an audio "
                f"format Bedrock takes ({', '.join(sorted(_AUDIO_FORMATS))}).",
                param=f"{param}.input_audio.format",
            )
        return BedrockAudioBlock(
            BedrockAudio(format=audio_format, source=BedrockBytesSource(part.input_audio.data))
        )
    return _document(part, param)


def _data_url(url: str, param: str, what: str) -> tuple[str, str]:
    """(media type, base64 data) of a `data:<type>;base64,<data>` URL."""
    head, comma, data = url.partition(",")
    if not (head.startswith("data:") and head.endswith(";base64") and comma):
        raise InvalidRequest(
            f"'{param}' must be a base64 data URL (data:<type>;base64,…): Bedrock takes "
            f"{what} only as inline bytes, and cannot fetch a URL.",
            param=param,
        )
    return head[len("data:") : -len(";base64")].strip().lower(), data


def _image(url: str, param: str) -> BedrockImageBlock:
    media_type, data = _data_url(url, param, "images")
    image_format = _IMAGE_FORMATS.get(media_type)
    if image_format is None:
        raise InvalidRequest(
            f"'{param}' is an image of type {media_type!r}; Bedrock takes PNG, JPEG, GIF and WebP.",
            param=param,
        )
    return BedrockImageBlock(BedrockImage(format=image_format, source=BedrockBytesSource(data)))


def _document(part: FilePart, param: str) -> BedrockDocumentBlock:
    if not isinstance(part.file.file_data, str):
        raise InvalidRequest(
            f"'{param}.file' must carry 'file_data': Bedrock has no file store for a 'file_id'.",
            param=f"{param}.file",
        )
    media_type, data = _data_url(part.file.file_data, f"{param}.file.file_data", "files")
    document_format = _DOCUMENT_FORMATS.get(media_type)
    if document_format is None:
        raise InvalidRequest(
            f"'{param}.file.file_data' has type {media_type!r}, not a document format Bedrock "
            f"takes ({', '.join(sorted(set(_DOCUMENT_FORMATS.values())))}).",
            param=f"{param}.file.file_data",
        )
    filename = part.file.filename if isinstance(part.file.filename, str) else ""
    return BedrockDocumentBlock(
        BedrockDocument(
            format=document_format, name=_document_name(filename), source=BedrockBytesSource(data)
        )
    )


def _document_name(filename: str) -> str:
    """Converse allows letters, digits, single spaces, hyphens, parentheses and square
    brackets in a document's name (the model sees it)."""
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    name = _SPACES.sub(" ", _DOCUMENT_NAME_UNSAFE.sub("-", stem)).strip()
    return name[:200] or "document"
