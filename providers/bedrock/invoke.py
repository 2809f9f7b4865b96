"""Claude on Bedrock through its native Anthropic body, for Messages API clients.

Bedrock user guide, "Anthropic Claude Messages API" and the API reference (InvokeModel,
InvokeModelWithResponseStream, CountTokens): the body is the Messages request without
`model` (it is in the path) and `stream` (the operation says it), plus
`anthropic_version: "bedrock-2023-05-31"` and the beta flags as `anthropic_beta`. The
answer is the Message object; the stream is AWS event-stream frames whose `chunk` events
carry each Messages stream event's JSON, base64-encoded, in `bytes`. CountTokens takes
the same body, base64-encoded, in `{"input": {"invokeModel": {"body": …}}}`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import AsyncGenerator, AsyncIterable

import msgspec
from msgspec import Raw

from providers.anthropic.native import MessagesCall
from providers.anthropic.relay import MessagesRelay
from providers.base import StreamChunk
from providers.bedrock.eventstream import EventStreamDecoder
from providers.errors import ProviderError, UpstreamProtocolError, UpstreamStreamCut

ANTHROPIC_VERSION = Raw(b'"bedrock-2023-05-31"')
_NOT_IN_BODY = ("model", "stream")
# "Malformed input request: #: extraneous key [context_management] is not permitted, …"
# (`#:` is the top level; nested paths read `#/messages/0: …`)
_EXTRANEOUS = re.compile(r"#: extraneous key \[([^\]]+)\] is not permitted")
_encode = msgspec.json.encode


def invoke_body(call: MessagesCall, *, counting: bool = False) -> bytes:
    fields = {name: value for name, value in call.fields.items() if name not in _NOT_IN_BODY}
    fields.setdefault("anthropic_version", ANTHROPIC_VERSION)
    if call.betas:
        fields["anthropic_beta"] = Raw(_encode(list(call.betas)))
    if counting and "max_tokens" not in fields:
        # a count_tokens body has none; the invoke body it stands for requires one
        fields["max_tokens"] = Raw(b"1")
    return _encode(fields)


def count_tokens_body(call: MessagesCall) -> bytes:
    body = base64.b64encode(invoke_body(call, counting=True)).decode()
    return _encode({"input": {"invokeModel": {"body": body}}})


def drop_refused_by_bedrock(call: MessagesCall, message: str | None) -> bool:
    """Leave out what Bedrock's ValidationException names: a beta flag it does not take
    ("invalid beta flag", which does not say which: every one goes) or top-level keys
    it does not know. False if it names nothing we can leave out."""
    if not message:
        return False
    keys = _EXTRANEOUS.findall(message)
    if ("invalid beta flag" in message.lower() or "anthropic_beta" in keys) and call.betas:
        return call.without_betas([])
    return bool(keys) and call.without_fields(keys)


class BedrockPayloadPart(msgspec.Struct):
    """A `chunk` event: one Messages stream event's JSON, base64-encoded."""

    bytes: str


INVOKE_EVENTS = {"chunk": msgspec.json.Decoder(BedrockPayloadPart)}


def _event_json(part: BedrockPayloadPart, provider: str) -> bytes:
    try:
        return base64.b64decode(part.bytes, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UpstreamProtocolError(
            f"{provider} sent a stream chunk that is not base64", provider=provider
        ) from exc


async def relayed_events(
    blocks: AsyncIterable[bytes], provider: str
) -> AsyncGenerator[StreamChunk, None]:
    """An invoke-with-response-stream body as Messages stream chunks, read as its
    blocks arrive (see `providers.anthropic.relay`)."""
    decoder = EventStreamDecoder(provider, INVOKE_EVENTS)
    relay = MessagesRelay(provider)
    async for block in blocks:
        chunks: list[StreamChunk] = []
        failure: ProviderError | None = None
        try:
            for part in decoder.feed(block):
                chunks.append(relay.feed(_event_json(part, provider)))
        except ProviderError as exc:
            failure = exc  # what arrived before the failure still goes out first
        for position, chunk in enumerate(chunks):
            chunk.more_buffered = position < len(chunks) - 1
            yield chunk
        failure = failure or decoder.failure
        if failure is not None:
            raise failure
        if relay.finished:
            return
    raise UpstreamStreamCut(f"{provider} ended the stream before message_stop", provider=provider)
