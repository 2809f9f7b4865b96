"""What the gateway adds to a provider's answer: `routing_metadata` and its headers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import msgspec
from litestar.types import Receive, Scope, Send

from gateway.accounting import RequestAccount
from gateway.raw_response import ClientGone, encoded
from gateway.secrets import scrub
from providers.chat_types import ChatChunk
from providers.errors import ProviderError, SwitchboardError
from routing.metadata import RoutingMetadata
from routing.router import RoutedStream

log = logging.getLogger("switchboard.stream")
_encode = msgspec.json.encode
_DONE = b"data: [DONE]\n\n"
_EVENT_STREAM = (b"content-type", b"text/event-stream; charset=utf-8")


def with_field(body: bytes, name: bytes, value: bytes) -> bytes:
    """Splice a field (name and JSON value as bytes) into the end of a JSON object,
    without re-encoding the rest of it."""
    head = body.rstrip()[:-1].rstrip()  # drop the closing brace
    separator = b"" if head.endswith(b"{") else b","
    return head + separator + b'"' + name + b'":' + value + b"}"


class _UsageSpan(msgspec.Struct):
    usage: msgspec.Raw = msgspec.Raw(b"null")


_usage_span = msgspec.json.Decoder(_UsageSpan)
_usage_fields = msgspec.json.Decoder(dict[str, msgspec.Raw])


def with_usage_cost(body: bytes, usd: float) -> bytes:
    """OpenRouter's convention: the answer's `usage` object also carries `cost` (USD),
    for clients written against OpenRouter. A body without a usage object is unchanged."""
    try:
        raw = bytes(_usage_span.decode(body).usage)
        if not raw.startswith(b"{"):
            return body  # none, or `null`: no usage to add a cost to
        if b'"cost"' in raw:  # an upstream's own (OpenRouter's): ours replaces it
            fields = _usage_fields.decode(raw)
            fields["cost"] = msgspec.Raw(_encode(usd))
            usage = _encode(fields)
        else:
            usage = with_field(raw, b"cost", _encode(usd))
    except msgspec.MsgspecError:
        return body
    start = body.rfind(raw)  # the top-level usage object: it is near the end
    return body[:start] + usage + body[start + len(raw) :]


def with_metadata(body: bytes, metadata: RoutingMetadata) -> bytes:
    """`routing_metadata` spliced into the answer (and its cost into `usage.cost`)."""
    body = with_usage_cost(body, metadata.cost.usd)
    return with_field(body, b"routing_metadata", _encode(metadata))


def success_headers(
    metadata: RoutingMetadata, *, with_cost: bool, dropped_params: tuple[str, ...] = ()
) -> dict[str, str]:
    headers = {
        "x-switchboard-provider": metadata.provider,
        "x-switchboard-model": metadata.provider_model_id,
    }
    if dropped_params:
        headers["x-switchboard-dropped-params"] = ",".join(dropped_params)
    if with_cost:
        headers["x-switchboard-cost-usd"] = f"{metadata.cost.usd:.10f}".rstrip("0").rstrip(".")
    return headers


class ChunkIdentity(msgspec.Struct):
    id: str | None = None
    created: int | None = None
    model: str | None = None


def stream_identity(stream: RoutedStream) -> ChunkIdentity:
    """The id, `created` and model of a stream's first chunk (OpenAI keeps one id per
    stream), for a closing chunk the gateway makes itself."""
    try:
        return msgspec.json.decode(stream.first_chunk.data, type=ChunkIdentity)
    except msgspec.MsgspecError:
        return ChunkIdentity()


def _closing_chunk(stream: RoutedStream) -> bytes:
    """For upstreams that send no usage chunk: an empty-choices chunk carrying our own
    usage count, under the stream's own id."""
    first = stream_identity(stream)
    chunk = ChatChunk(
        id=first.id or f"chatcmpl-{stream.request_id}",
        created=first.created or int(time.time()),
        model=first.model or stream.candidate.deployment.model,
        choices=[],
        usage=stream.usage,
    )
    return _encode(chunk)


class SSEAnswer:
    """The ASGI answer for a routed stream: chunks as the provider sent them, each sent as
    soon as it arrived; the last event before `[DONE]` carries usage and
    `routing_metadata`. A failure after the first byte ends the stream with an error
    event. `account` is closed as the stream ends, fails, or is left by the client.
    `closing_chunk` makes the last event when the upstream sent no usage chunk (another
    API's streams: a chunk of their own shape).

    It sends to the server itself, with no iterator or task group between: each burst of
    chunks that arrived together is one `send` (one write, however many chunks), the
    last burst ends the body in the same write, and a client that leaves is noticed by
    one waiting `receive` (`ClientGone`), which stops the upstream."""

    __slots__ = ("_account", "_closing_chunk", "_headers", "_stream")

    def __init__(
        self,
        stream: RoutedStream,
        account: RequestAccount | None,
        headers: dict[str, str],
        *,
        closing_chunk: Callable[[RoutedStream], bytes] = _closing_chunk,
    ) -> None:
        self._stream = stream
        self._account = account
        self._headers = [_EVENT_STREAM, *encoded(headers)]
        self._closing_chunk = closing_chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with ClientGone(receive) as gone:
            try:
                await send({"type": "http.response.start", "status": 200, "headers": self._headers})
                last = await self._relay(send)
                await send({"type": "http.response.body", "body": last, "more_body": False})
            except asyncio.CancelledError:
                if not gone.left:
                    raise
                # the client left: `_relay` closed the stream; nothing went wrong here

    async def _relay(self, send: Send) -> bytes:
        """Send the chunks as they arrive; returns the last burst (closing chunk, error,
        `[DONE]`) for the write that ends the body."""
        stream, account = self._stream, self._account
        closing: bytes | None = None
        pending: list[bytes] = []
        try:
            async for chunk in stream.chunks():
                if chunk.usage_only:
                    closing = chunk.data  # held back: it must be the last event
                else:
                    pending.append(b"data: " + chunk.data + b"\n\n")
                if not chunk.more_buffered and pending:
                    # a burst that arrived together leaves together: one write, not twenty
                    body = pending[0] if len(pending) == 1 else b"".join(pending)
                    pending.clear()
                    await send({"type": "http.response.body", "body": body, "more_body": True})
            metadata = stream.metadata()
            if account is not None:
                account.stream_ended(metadata, stream.usage)
            closing = with_metadata(closing or self._closing_chunk(stream), metadata)
            pending.append(b"data: " + closing + b"\n\n")
        except SwitchboardError as exc:
            scrub(exc)  # an upstream may have echoed the provider key it was sent
            if account is not None:
                account.stream_ended(stream.metadata(), stream.usage, error=exc)
            pending.append(b"data: " + exc.to_json() + b"\n\n")
        except Exception:  # the stream has begun: the client must still get a clean ending
            log.exception("stream %s failed", stream.request_id)
            error = ProviderError("the stream failed inside the gateway")
            if account is not None:
                account.stream_ended(stream.metadata(), stream.usage, error=error)
            pending.append(b"data: " + error.to_json() + b"\n\n")
        finally:
            if account is not None and not account.finished:
                # the client left: it is charged for what was produced until then
                account.stream_ended(stream.metadata(), stream.usage, client_left=True)
            # also runs when the client disconnects: closes the upstream request
            await stream.aclose()
        pending.append(_DONE)
        return b"".join(pending)
