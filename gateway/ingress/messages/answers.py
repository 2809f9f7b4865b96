"""What the gateway adds to a Messages answer: `routing_metadata` (on the Message; on a
stream's closing `message_stop` event, an extra field the SDKs ignore), its headers,
and the stream's framing, ending (`message_stop`) and mid-stream errors (an Anthropic
`error` event, as Anthropic ends a stream that fails)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import msgspec

from gateway.accounting import RequestAccount
from gateway.answers import success_headers, with_metadata
from gateway.ingress.messages.errors import anthropic_error_json
from gateway.ingress.messages.from_chat import usage_out
from gateway.ingress.messages.operations import TranslatedAnswer
from gateway.ingress.messages.wire import MESSAGE_STOP
from gateway.secrets import scrub
from providers.anthropic.relay import sse_frame
from providers.errors import ProviderError, SwitchboardError
from routing.router import CompletedCall, RoutedStream

log = logging.getLogger("switchboard.stream")


def message_body(completed: CompletedCall) -> bytes:
    """The Message with `routing_metadata`: a native deployment's as it sent it; a
    translated one's with the usage routing priced (the upstream's, or our count)."""
    response = completed.response
    if isinstance(response, TranslatedAnswer):
        response.message.usage = usage_out(completed.usage)
        body = msgspec.json.encode(response.message)
    else:
        body = response.body
    return with_metadata(body, completed.metadata)


def answer_headers(
    completed: CompletedCall, request_id: str, dropped: tuple[str, ...]
) -> dict[str, str]:
    headers = success_headers(completed.metadata, with_cost=True, dropped_params=dropped)
    headers["request-id"] = request_id  # Anthropic's name for it, which its SDKs read
    return headers


def stream_headers(
    stream: RoutedStream, request_id: str, dropped: tuple[str, ...]
) -> dict[str, str]:
    deployment = stream.candidate.deployment
    headers = {
        "x-switchboard-provider": deployment.provider,
        "x-switchboard-model": deployment.model,
        "request-id": request_id,
        "cache-control": "no-cache",
        "x-accel-buffering": "no",  # nginx in front must not buffer the stream
    }
    if dropped:
        headers["x-switchboard-dropped-params"] = ",".join(dropped)
    return headers


async def message_events(stream: RoutedStream, account: RequestAccount) -> AsyncIterator[bytes]:
    """The events as they come; the closing `message_stop` carries `routing_metadata`. A
    failure after the first byte ends the stream with an `error` event. `account` is
    closed as the stream ends, fails, or is left by the client."""
    closing = MESSAGE_STOP
    pending: list[bytes] = []
    try:
        async for chunk in stream.chunks():
            if chunk.usage_only:
                closing = chunk.data  # held back: it must be the last event
            elif chunk.data:
                pending.append(chunk.data)
            if not chunk.more_buffered and pending:
                # a burst that arrived together leaves together: one write, not twenty
                yield b"".join(pending)
                pending.clear()
        metadata = stream.metadata()
        account.stream_ended(metadata, stream.usage)
        pending.append(sse_frame("message_stop", with_metadata(closing, metadata)))
    except SwitchboardError as exc:
        scrub(exc)  # an upstream may have echoed the provider key it was sent
        account.stream_ended(stream.metadata(), stream.usage, error=exc)
        pending.append(sse_frame("error", anthropic_error_json(exc, stream.request_id)))
    except Exception:  # the stream has begun: the client must still get a clean ending
        log.exception("stream %s failed", stream.request_id)
        error = ProviderError("the stream failed inside the gateway")
        account.stream_ended(stream.metadata(), stream.usage, error=error)
        pending.append(sse_frame("error", anthropic_error_json(error, stream.request_id)))
    finally:
        if not account.finished:
            # the client left: it is charged for what was produced until then
            account.stream_ended(stream.metadata(), stream.usage, client_left=True)
        # also runs when the client disconnects: closes the upstream request
        await stream.aclose()
    yield b"".join(pending)
