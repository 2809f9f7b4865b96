"""A Messages API event stream passed on to a Messages client as the upstream sent it.

Each event becomes one `StreamChunk` whose `data` is the event framed for the client
(`event: <type>` then `data: <json>`, as Anthropic frames it: the SDKs skip events
without a name). What routing reads is noted on the way: the first generated content
(TTFT), the usage (`message_start`, then the cumulative `message_delta`), an `error`
event (raised as the error it names). The closing `message_stop` is the one chunk left
unframed and flagged `usage_only`: the gateway adds `routing_metadata` to it, then
frames it.
"""

from __future__ import annotations

import msgspec

from providers.anthropic.errors import classify_error
from providers.anthropic.response import merge_usage, openai_usage
from providers.anthropic.wire import AnthropicStreamEvent, AnthropicUsage, stream_event_decoder
from providers.base import StreamChunk
from providers.errors import UpstreamProtocolError


def sse_frame(event: str, data: bytes) -> bytes:
    """One named server-sent event; a multi-line payload takes one `data:` line each."""
    if b"\n" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\ndata: ")
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


class MessagesRelay:
    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._usage = AnthropicUsage()
        self._started = False
        self.finished = False  # `message_stop` arrived: the answer is complete

    def feed(self, data: bytes) -> StreamChunk:
        """The chunk one event's JSON `data` becomes."""
        try:
            event = stream_event_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamProtocolError(
                f"{self._provider} sent a stream event that is not Anthropic's: {exc}",
                provider=self._provider,
            ) from exc
        kind = event.type
        if kind == "error":
            detail = event.error
            raise classify_error(
                detail.type if detail else None,
                detail.message if detail else None,
                provider=self._provider,
            )
        if kind == "message_start":
            self._started = True
            if event.message is not None and event.message.usage is not None:
                merge_usage(self._usage, event.message.usage)
                return StreamChunk(data=sse_frame(kind, data), usage=openai_usage(self._usage))
        elif not self._started and kind != "ping":
            raise UpstreamProtocolError(
                f"{self._provider} sent {kind!r} before message_start", provider=self._provider
            )
        elif kind == "message_stop":
            self.finished = True
            return StreamChunk(data=data, usage_only=True)
        elif kind == "message_delta" and event.usage is not None:
            merge_usage(self._usage, event.usage)
            return StreamChunk(data=sse_frame(kind, data), usage=openai_usage(self._usage))
        return StreamChunk(data=sse_frame(kind, data), has_output=_has_output(event))


def _has_output(event: AnthropicStreamEvent) -> bool:
    delta = event.delta
    return (
        event.type == "content_block_delta"
        and delta is not None
        and bool(delta.text or delta.thinking or delta.partial_json)
    )
