"""OpenAI's Responses API, forwarded to an upstream that has it (OpenAI, Azure).

The client's Responses body goes upstream as sent, less the gateway's own fields and the
ones routing dropped, with the deployment's model id and the client's `extensions` for
this upstream merged in; the answer comes back as the upstream's own bytes, its stream
event by event. What routing needs is read off the way: usage (named `input_tokens` and
`output_tokens` in this API), which events carry output (the first one marks the time to
first token), and failures, typed as the chat adapter types them.

A stream's lifecycle events (`response.created`, `response.in_progress`) are held back
until the first event that shows the upstream is producing an answer: a failure before
it (a `response.failed` or `error` event) is still retried or falls back, as a chat
stream's failure before its first chunk is.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping

import msgspec
from msgspec import Raw

from providers.base import ProviderResponse, StreamChunk
from providers.chat_types import CompletionTokensDetails, PromptTokensDetails, Usage
from providers.errors import (
    ProviderError,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamRejectedRequest,
    UpstreamStreamCut,
    UpstreamUnavailable,
)
from providers.http_client import UpstreamHTTP
from providers.openai.errors import classify_status
from providers.sse import SSEDecoder, SSEEvent

_encode = msgspec.json.encode
_LIFECYCLE = frozenset({b"response.created", b"response.in_progress", b"response.queued"})
_TERMINAL = frozenset({b"response.completed", b"response.incomplete"})
_FAILED = frozenset({b"response.failed", b"error"})
_DELTA = b".delta"


class ResponsesCall(msgspec.Struct, kw_only=True):
    """One attempt at one deployment's Responses API."""

    fields: dict[str, Raw]  # the client's top-level fields, the gateway's own taken out
    model: str  # the provider's own id for the model
    stream: bool = False
    drop: tuple[str, ...] = ()  # top-level fields routing decided this upstream must not get
    extensions: dict[str, dict[str, Raw]] | None = None  # the client's `extensions`


class _InputDetails(msgspec.Struct):
    cached_tokens: int | None = None


class _OutputDetails(msgspec.Struct):
    reasoning_tokens: int | None = None


class _UsageView(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    input_tokens_details: _InputDetails | None = None
    output_tokens_details: _OutputDetails | None = None

    def usage(self) -> Usage:
        inputs, outputs = self.input_tokens_details, self.output_tokens_details
        return Usage(
            prompt_tokens=self.input_tokens or 0,
            completion_tokens=self.output_tokens or 0,
            total_tokens=self.total_tokens or 0,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=inputs.cached_tokens or 0)
            if inputs is not None
            else msgspec.UNSET,
            completion_tokens_details=CompletionTokensDetails(
                reasoning_tokens=outputs.reasoning_tokens or 0
            )
            if outputs is not None
            else msgspec.UNSET,
        )


class _ErrorView(msgspec.Struct):
    code: str | None = None
    message: str | None = None


class _ResponseView(msgspec.Struct):
    """What is read of a Response object: its state and usage; the rest passes through."""

    status: str | None = None
    usage: _UsageView | None = None
    error: _ErrorView | None = None


class _EventView(msgspec.Struct):
    type: str = ""
    response: _ResponseView | None = None
    # an `error` event has its fields at the top level; some servers nest them
    code: str | None = None
    message: str | None = None
    error: _ErrorView | None = None


_response_decoder = msgspec.json.Decoder(_ResponseView)
_event_decoder = msgspec.json.Decoder(_EventView)


def failure(provider: str, code: str | None, message: str | None) -> ProviderError:
    """A failure the upstream reported inside an answer (a failed response, an `error`
    event), typed by its code as an HTTP failure would be by its status."""
    said = f"{provider}: {message or 'the response failed'}"
    if code == "rate_limit_exceeded":
        return UpstreamRateLimited(said, provider=provider)
    if code is not None and (code.startswith(("invalid", "image_", "empty_")) or "policy" in code):
        # the request itself (its prompt, an image): any other deployment would refuse it
        return UpstreamRejectedRequest(said, provider=provider, code=code)
    return UpstreamUnavailable(said, provider=provider)


class ResponsesAPI:
    """The Responses endpoint of one OpenAI-wire upstream."""

    def __init__(
        self,
        provider: str,
        http: UpstreamHTTP,
        headers: Mapping[str, str],
        url: str,
        extension: str,
    ) -> None:
        self.provider = provider
        self.url = url
        self._http = http
        self._headers = dict(headers)
        self._stream_headers = {**headers, "accept": "text/event-stream"}
        self._extension = extension  # the key of `extensions` merged into the body

    def body_for(self, call: ResponsesCall) -> bytes:
        fields = {name: value for name, value in call.fields.items() if name not in call.drop}
        fields["model"] = Raw(_encode(call.model))
        if call.extensions:
            fields.update(call.extensions.get(self._extension, {}))
        return _encode(fields)

    async def complete(self, call: ResponsesCall) -> ProviderResponse:
        reply = await self._http.post(self.url, self.body_for(call), self._headers)
        if reply.status != 200:
            raise classify_status(reply.status, reply.headers, reply.body, self.provider)
        try:
            view = _response_decoder.decode(reply.body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamProtocolError(
                f"{self.provider} answered with something that is not a response: {exc}",
                provider=self.provider,
                upstream_status=reply.status,
            ) from exc
        if view.status == "failed":
            error = view.error or _ErrorView()
            raise failure(self.provider, error.code, error.message)
        usage = view.usage.usage() if view.usage is not None else None
        return ProviderResponse(body=reply.body.strip(), usage=usage)

    async def stream(self, call: ResponsesCall) -> AsyncGenerator[StreamChunk, None]:
        """One chunk per event; `data` is the event's whole SSE frame (`event:` and
        `data:` lines). The closing event (completed or incomplete) is marked
        `usage_only`: the gateway adds its `routing_metadata` before sending it."""
        body = self.body_for(call)
        async with self._http.open_stream(self.url, body, self._stream_headers) as response:
            if response.status != 200:
                raise classify_status(
                    response.status, response.headers, await response.read(), self.provider
                )
            held: list[StreamChunk] = []  # lifecycle events, until the answer shows
            decoder = SSEDecoder()
            async for block in response.blocks():
                chunks, held = held, []
                answering = False
                failed: ProviderError | None = None
                for event in decoder.feed_block(block):
                    try:
                        chunk, kind = self._chunk(event)
                    except ProviderError as exc:
                        failed = exc  # after what arrived before it has gone out
                        break
                    chunks.append(chunk)
                    answering = answering or kind not in _LIFECYCLE
                    if chunk.usage_only:
                        break
                if not answering and failed is None:
                    held = chunks  # nothing shows yet that the upstream is answering
                    continue
                if failed is not None and not answering:
                    raise failed  # before the first byte: routing may still fall back
                last = len(chunks) - 1
                for position, chunk in enumerate(chunks):
                    chunk.more_buffered = position < last
                    yield chunk
                if failed is not None:
                    raise failed
                if chunks and chunks[-1].usage_only:
                    return
            raise UpstreamStreamCut(
                f"{self.provider} ended the stream before the response was complete",
                provider=self.provider,
            )

    def _chunk(self, event: SSEEvent) -> tuple[StreamChunk, bytes]:
        data = event.data.replace(b"\n", b" ") if b"\n" in event.data else event.data
        kind = event.event
        view: _EventView | None = None
        if kind == b"message" or kind in _TERMINAL or kind in _FAILED:
            # no `event:` line to go by, or an event whose content matters
            try:
                view = _event_decoder.decode(data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise UpstreamProtocolError(
                    f"{self.provider} sent a stream event that is not JSON: {exc}",
                    provider=self.provider,
                ) from exc
            kind = view.type.encode() or kind
        if kind in _FAILED and view is not None:
            detail = view.error or (view.response.error if view.response else None)
            raise failure(
                self.provider,
                view.code or (detail.code if detail else None),
                view.message or (detail.message if detail else None),
            )
        frame = b"event: " + kind + b"\ndata: " + data + b"\n\n"
        if kind in _TERMINAL:
            response = view.response if view is not None else None
            usage = response.usage.usage() if response and response.usage else None
            return StreamChunk(data=frame, usage=usage, usage_only=True), kind
        return StreamChunk(data=frame, has_output=kind.endswith(_DELTA)), kind
