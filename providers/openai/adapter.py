"""The OpenAI-compatible adapter: forwards the client's body nearly byte for byte."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import msgspec
from msgspec import Raw

from providers.base import Provider, ProviderCall, ProviderResponse, StreamChunk
from providers.errors import UpstreamProtocolError, UpstreamStreamCut, UpstreamUnavailable
from providers.http_client import Timeouts, UpstreamHTTP
from providers.openai.config import OpenAIConfig
from providers.openai.errors import classify_status
from providers.openai.wire import ChunkView, UpstreamErrorDetail, chunk_decoder, completion_decoder
from providers.sse import SSEDecoder

_encode = msgspec.json.encode
_INCLUDE_USAGE = Raw(b'{"include_usage":true}')
_NULL = Raw(b"null")
_DONE = b"[DONE]"


def upstream_body(call: ProviderCall) -> bytes:
    """The client's fields as sent, with the deployment's model id and our usage request."""
    request = call.request
    fields = dict(request.raw)
    fields["model"] = Raw(_encode(call.model))
    if request.stream:
        # the closing usage chunk is how we price a stream
        options = fields.get("stream_options")
        if options is None or options == _NULL:
            fields["stream_options"] = _INCLUDE_USAGE
        else:
            merged = msgspec.json.decode(options, type=dict[str, Raw])
            merged["include_usage"] = Raw(b"true")
            fields["stream_options"] = Raw(_encode(merged))
    if isinstance(request.extensions, dict):
        fields.update(request.extensions.get("openai", {}))
    return _encode(fields)


class OpenAIProvider(Provider):
    def __init__(self, name: str, config: OpenAIConfig) -> None:
        super().__init__(name)
        self._url = config.base_url.rstrip("/") + "/chat/completions"
        headers = {"content-type": "application/json", **config.headers}
        if config.api_key:
            headers["authorization"] = f"Bearer {config.api_key}"
        self._headers = headers
        self._stream_headers = {**headers, "accept": "text/event-stream"}
        timeouts = Timeouts(
            total=config.timeout,
            connect=config.connect_timeout,
            read=config.read_timeout or config.timeout,
        )
        self._http = UpstreamHTTP(name, timeouts, config.max_connections)

    async def complete(self, call: ProviderCall) -> ProviderResponse:
        reply = await self._http.post(self._url, upstream_body(call), self._headers)
        if reply.status != 200:
            raise classify_status(reply.status, reply.headers, reply.body, self.name)
        try:
            view = completion_decoder.decode(reply.body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamProtocolError(
                f"{self.name} answered with something that is not a chat completion: {exc}",
                provider=self.name,
                upstream_status=reply.status,
            ) from exc
        return ProviderResponse(body=reply.body.strip(), usage=view.usage)

    async def stream(self, call: ProviderCall) -> AsyncGenerator[StreamChunk, None]:
        body = upstream_body(call)
        async with self._http.open_stream(self._url, body, self._stream_headers) as response:
            if response.status != 200:
                raise classify_status(
                    response.status, response.headers, await response.read(), self.name
                )
            finished = False
            decoder = SSEDecoder()
            async for block in response.blocks():
                events = decoder.feed_block(block)
                last = len(events) - 1
                for position, event in enumerate(events):
                    if event.data == _DONE:
                        return
                    data = event.data
                    if b"\n" in data:
                        # one event's JSON split over several `data:` lines, joined with
                        # "\n" by the SSE rules; outside strings that is only whitespace in
                        # JSON, and a chunk must be one line to be framed as one `data:`
                        data = data.replace(b"\n", b" ")
                    chunk = self._read_chunk(data)
                    finished = finished or any(c.finish_reason for c in chunk.choices or ())
                    yield _stream_chunk(data, chunk, more_buffered=position < last)
            if not finished:
                raise UpstreamStreamCut(
                    f"{self.name} ended the stream before it was complete", provider=self.name
                )

    def _read_chunk(self, data: bytes) -> ChunkView:
        try:
            chunk = chunk_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamProtocolError(
                f"{self.name} sent a stream event that is not a chunk: {exc}", provider=self.name
            ) from exc
        if chunk.error is not None:
            detail = chunk.error
            said = detail.message if isinstance(detail, UpstreamErrorDetail) else detail
            raise UpstreamUnavailable(f"{self.name}: {said}", provider=self.name)
        return chunk

    async def aclose(self) -> None:
        await self._http.aclose()


def _stream_chunk(data: bytes, chunk: ChunkView, *, more_buffered: bool) -> StreamChunk:
    choices = chunk.choices or []
    has_output = False
    for choice in choices:
        delta = choice.delta
        if delta is not None and (
            delta.content
            or delta.tool_calls
            or delta.reasoning_content
            or delta.refusal
            or delta.function_call
        ):
            has_output = True
            break
    return StreamChunk(
        data=data,
        usage=chunk.usage,
        has_output=has_output,
        usage_only=not choices and chunk.usage is not None,
        more_buffered=more_buffered,
    )
