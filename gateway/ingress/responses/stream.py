"""The Responses event stream as the client gets it, whichever way it was produced.

Events go out as they came (a native upstream's frames, or the translator's), bursts in
one write. The closing event gets the request's `routing_metadata` (and, when the
upstream reported no usage, the gateway's own count) spliced into its response, so it
carries both as a non-streaming Response does. A failure after the first event ends the
stream with an `error` event and a `response.failed` whose response keeps the stream's id.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import msgspec
from msgspec import Raw

from gateway.accounting import RequestAccount
from gateway.answers import with_metadata
from gateway.ingress.responses.events import ClosingChunk
from gateway.ingress.responses.from_chat import responses_usage
from gateway.ingress.responses.wire import ErrorEvent, ResponseError
from providers.base import StreamChunk
from providers.errors import ProviderError, SwitchboardError
from routing.metadata import RoutingMetadata
from routing.router import RoutedStream

log = logging.getLogger("switchboard.stream")
_encode = msgspec.json.encode
_fields = msgspec.json.Decoder(dict[str, Raw])
_DATA = b"\ndata: "
_NULL = Raw(b"null")

# what to do with the finished response (keep it), given its fields
OnCompleted = Callable[[dict[str, Raw]], None]


def _split(frame: bytes) -> tuple[bytes, bytes]:
    """`event: <type>` and the JSON of one frame."""
    head, _, data = frame.partition(_DATA)
    return head, data.rstrip(b"\n")


def closed_response(
    chunk: StreamChunk, metadata: RoutingMetadata, stream: RoutedStream
) -> tuple[bytes, dict[str, Raw]]:
    """The closing frame with `routing_metadata` (and `usage.cost`) in its response, as a
    whole Response has them; and that response's fields (for a translated stream only
    its `output`: all that is kept of it)."""
    if type(chunk) is ClosingChunk and not stream.usage_estimated:
        # the translator's: spliced without decoding and encoding the response again
        body = with_metadata(chunk.response, metadata)
        return chunk.head + body + b"}\n\n", {"output": Raw(chunk.output)}
    head, data = _split(chunk.data)
    event = _fields.decode(data)
    response = _fields.decode(event["response"])
    if stream.usage_estimated and response.get("usage", _NULL) == _NULL:
        response["usage"] = Raw(_encode(responses_usage(stream.usage)))
    event["response"] = Raw(with_metadata(_encode(response), metadata))
    return head + _DATA + _encode(event) + b"\n\n", response


def failure_frames(
    first: bytes, error: SwitchboardError, sequence: int, metadata: RoutingMetadata | None
) -> bytes:
    """`error`, then `response.failed` with the response `response.created` opened."""
    event = ErrorEvent(
        sequence_number=sequence, code=error.code, message=error.message, param=error.param
    )
    frames = b"event: error" + _DATA + _encode(event) + b"\n\n"
    try:
        response = _fields.decode(_fields.decode(_split(first)[1])["response"])
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError):
        return frames  # no response to fail (the upstream opened with something else)
    response["status"] = Raw(b'"failed"')
    response["error"] = Raw(_encode(ResponseError(code=error.code, message=error.message)))
    if metadata is not None:
        response["routing_metadata"] = Raw(_encode(metadata))
    failed = {
        "type": Raw(b'"response.failed"'),
        "sequence_number": Raw(_encode(sequence + 1)),
        "response": Raw(_encode(response)),
    }
    return frames + b"event: response.failed" + _DATA + _encode(failed) + b"\n\n"


async def sse_frames(
    stream: RoutedStream,
    account: RequestAccount,
    on_completed: OnCompleted,
) -> AsyncIterator[bytes]:
    """`account` is closed as the stream ends, fails, or is left by the client (the
    metrics, the ledger and the request log read its record)."""
    closing: StreamChunk | None = None
    pending: list[bytes] = []
    sent = 0  # events so far: the next one's sequence number
    try:
        async for chunk in stream.chunks():
            if chunk.usage_only:
                closing = chunk  # held back: it gets the metadata once all is known
            else:
                pending.append(chunk.data)
                sent += 1
            if not chunk.more_buffered and pending:
                yield b"".join(pending)
                pending.clear()
        if closing is None:  # pragma: no cover - both producers end with a closing event
            raise ProviderError("the stream ended without its closing event")
        metadata = stream.metadata()
        account.stream_ended(metadata, stream.usage)
        frame, response = closed_response(closing, metadata, stream)
        pending.append(frame)
        on_completed(response)
    except SwitchboardError as exc:
        metadata = stream.metadata()
        account.stream_ended(metadata, stream.usage, error=exc)
        pending.append(failure_frames(stream.first_chunk.data, exc, sent, metadata))
    except Exception:  # the stream has begun: the client must still get a clean ending
        log.exception("stream %s failed", stream.request_id)
        error = ProviderError("the stream failed inside the gateway")
        account.stream_ended(stream.metadata(), stream.usage, error=error)
        pending.append(failure_frames(stream.first_chunk.data, error, sent, None))
    finally:
        if not account.finished:
            # the client left: it is charged for what was produced until then
            account.stream_ended(stream.metadata(), stream.usage, client_left=True)
        # also runs when the client disconnects: closes the upstream request
        await stream.aclose()
    if pending:
        yield b"".join(pending)
