"""converse-stream's body: AWS event-stream binary frames → typed Bedrock events.

Each frame is one message: a prelude (total length, headers length, CRC32), typed
headers, a JSON payload and a CRC32 of the whole. botocore's `EventStreamBuffer` does the
framing and the checksums; frames split across network reads are reassembled by it. The
headers say what the payload is: `:message-type` `event` with its `:event-type`, or
`exception` with its `:exception-type` (AWS event-stream encoding, as used by
ConverseStream).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import msgspec

from providers.bedrock.errors import classify_stream_exception
from providers.bedrock.wire import STREAM_EVENT_TYPES, BedrockStreamEvent
from providers.errors import ProviderError, UpstreamProtocolError

E = TypeVar("E")

# converse-stream's payload shapes, by `:event-type`
CONVERSE_EVENTS: dict[str, msgspec.json.Decoder[BedrockStreamEvent]] = {
    name: msgspec.json.Decoder(shape) for name, shape in STREAM_EVENT_TYPES.items()
}


class EventStreamDecoder(Generic[E]):
    """Feed body blocks as they arrive; get back the events they complete.

    An exception event ends the answer: the events before it are still returned, and
    `failure` then holds the error to raise once they are passed on. `decoders`: the
    payload shape of each `:event-type` (e.g. `CONVERSE_EVENTS`); others are skipped."""

    def __init__(self, provider: str, decoders: Mapping[str, msgspec.json.Decoder[E]]) -> None:
        # botocore is the `bedrock` extra: imported only once a bedrock provider streams
        from botocore.eventstream import EventStreamBuffer, ParserError

        self._provider = provider
        self._decoders = decoders
        self._buffer = EventStreamBuffer()
        # botocore checks the framing and checksums (ParserError), not what a frame with
        # valid checksums holds: an unknown header type is a KeyError, a short header a
        # struct.error, a header name that is not UTF-8 a UnicodeDecodeError
        self._frame_errors: tuple[type[Exception], ...] = (
            ParserError,
            KeyError,
            struct.error,
            UnicodeDecodeError,
        )
        self._partial = 0  # bytes received that no complete frame has used yet
        self.failure: ProviderError | None = None

    @property
    def mid_frame(self) -> bool:
        """Whether the bytes so far end inside a frame (a body cut there is truncated)."""
        return self._partial > 0

    def feed(self, block: bytes) -> list[E]:
        if self.failure is not None:
            return []
        self._buffer.add_data(block)
        self._partial += len(block)
        events: list[E] = []
        try:
            for message in self._buffer:
                self._partial -= message.prelude.total_length
                event = self._event(message.headers, message.payload)
                if self.failure is not None:
                    break
                if event is not None:
                    events.append(event)
        except self._frame_errors as exc:
            raise UpstreamProtocolError(
                f"{self._provider} sent a broken event-stream frame ({type(exc).__name__})",
                provider=self._provider,
            ) from exc
        return events

    def _event(self, headers: dict[str, Any], payload: bytes) -> E | None:
        message_type = headers.get(":message-type", "event")
        if message_type == "exception":
            self.failure = classify_stream_exception(
                str(headers.get(":exception-type", "")), payload, self._provider
            )
            return None
        if message_type == "error":  # the framing layer's own errors carry no payload
            self.failure = classify_stream_exception(
                str(headers.get(":error-code", "")),
                msgspec.json.encode({"message": headers.get(":error-message")}),
                self._provider,
            )
            return None
        decoder = self._decoders.get(str(headers.get(":event-type", "")))
        if decoder is None:
            return None  # an event type newer than this adapter: nothing we could show
        try:
            event: E = decoder.decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamProtocolError(
                f"{self._provider} sent a {headers.get(':event-type')} event that is not "
                f"the documented shape: {exc}",
                provider=self._provider,
            ) from exc
        return event
