"""Legacy completions (`POST /completions`) on an OpenAI-wire upstream (OpenAI,
compatible vendors, Azure): the client's body forwarded as sent, answers and stream
chunks passed through as the upstream's bytes.

As for chat, a stream asks for the closing usage chunk (`stream_options.include_usage`)
where the upstream honours it: that is how a stream is priced.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping

import msgspec
from msgspec import Raw

from providers.base import ProviderResponse, StreamChunk
from providers.completions import CompletionsAPI, TextCompletionCall
from providers.errors import (
    ProviderError,
    UpstreamProtocolError,
    UpstreamStreamCut,
    UpstreamUnavailable,
)
from providers.http_client import UpstreamHTTP
from providers.openai.errors import classify_status
from providers.openai.wire import UpstreamErrorDetail, UsageView
from providers.sse import SSEDecoder

_encode = msgspec.json.encode
_DONE = b"[DONE]"
_NULL = Raw(b"null")


class _TextChoiceView(msgspec.Struct):
    text: str | None = None
    finish_reason: str | None = None


class _AnswerView(msgspec.Struct):
    choices: list[_TextChoiceView]
    usage: UsageView | None = None


class _ChunkView(msgspec.Struct):
    choices: list[_TextChoiceView] | None = None
    usage: UsageView | None = None
    error: UpstreamErrorDetail | str | None = None


_answer_decoder = msgspec.json.Decoder(_AnswerView)
_chunk_decoder = msgspec.json.Decoder(_ChunkView)


class OpenAICompletions(CompletionsAPI):
    def __init__(
        self,
        provider: str,
        http: UpstreamHTTP,
        headers: Mapping[str, str],
        url_for: Callable[[str], str],
        extension: str,
        *,
        stream_usage: bool,
    ) -> None:
        self._provider = provider
        self._http = http
        self._headers = headers
        self._stream_headers = {**headers, "accept": "text/event-stream"}
        self._url_for = url_for  # the deployment's model id → its completions URL
        self._extension = extension  # the key of `extensions` merged into the body
        self._stream_usage = stream_usage  # the upstream honours `stream_options`

    def body_for(self, call: TextCompletionCall) -> bytes:
        request = call.request
        fields = {k: v for k, v in request.raw.items() if k not in call.drop_params}
        fields["model"] = Raw(_encode(call.model))
        if request.stream and self._stream_usage:
            options = fields.get("stream_options")
            merged = {} if options is None or options == _NULL else _decoded(options)
            merged["include_usage"] = Raw(b"true")
            fields["stream_options"] = Raw(_encode(merged))
        fields.update(request.extension(self._extension))
        return _encode(fields)

    async def complete(self, call: TextCompletionCall) -> ProviderResponse:
        reply = await self._http.post(self._url_for(call.model), self.body_for(call), self._headers)
        if reply.status != 200:
            raise reply.annotate(
                classify_status(reply.status, reply.headers, reply.body, self._provider)
            )
        try:
            answer = _answer_decoder.decode(reply.body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamProtocolError(
                f"{self._provider} answered with something that is not a text completion: {exc}",
                provider=self._provider,
                upstream_status=reply.status,
            ) from exc
        usage = answer.usage.usage() if answer.usage is not None else None
        return ProviderResponse(body=reply.body.strip(), usage=usage)

    async def stream(self, call: TextCompletionCall) -> AsyncGenerator[StreamChunk, None]:
        url, body = self._url_for(call.model), self.body_for(call)
        async with self._http.open_stream(url, body, self._stream_headers) as response:
            if response.status != 200:
                raise classify_status(
                    response.status, response.headers, await response.read(), self._provider
                )
            finished = False
            decoder = SSEDecoder()
            async for block in response.blocks():
                chunks: list[StreamChunk] = []
                failure: ProviderError | None = None
                done = False
                for event in decoder.feed_block(block):
                    if event.data == _DONE:
                        done = True
                        break
                    data = event.data.replace(b"\n", b" ")  # one event, one `data:` line
                    try:
                        chunk = self._read_chunk(data)
                    except ProviderError as exc:
                        failure = exc  # after what arrived before it has gone out
                        break
                    finished = finished or any(c.finish_reason for c in chunk.choices or ())
                    if not chunk.choices and chunk.usage is None:
                        continue  # nothing a client can use
                    chunks.append(_stream_chunk(data, chunk))
                last = len(chunks) - 1
                for position, stream_chunk in enumerate(chunks):
                    stream_chunk.more_buffered = position < last
                    yield stream_chunk
                if failure is not None:
                    raise failure
                if done:
                    return
            if not finished:
                raise UpstreamStreamCut(
                    f"{self._provider} ended the stream before it was complete",
                    provider=self._provider,
                )

    def _read_chunk(self, data: bytes) -> _ChunkView:
        try:
            chunk = _chunk_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamProtocolError(
                f"{self._provider} sent a stream event that is not a text completion: {exc}",
                provider=self._provider,
            ) from exc
        if chunk.error is not None:
            detail = chunk.error
            said = detail.message if isinstance(detail, UpstreamErrorDetail) else detail
            raise UpstreamUnavailable(
                f"{self._provider}: {said or 'an error in place of a chunk'}",
                provider=self._provider,
            )
        return chunk


def _decoded(options: Raw) -> dict[str, Raw]:
    return msgspec.json.decode(options, type=dict[str, Raw])


def _stream_chunk(data: bytes, chunk: _ChunkView) -> StreamChunk:
    choices = chunk.choices or []
    usage = chunk.usage.usage() if chunk.usage is not None else None
    return StreamChunk(
        data=data,
        usage=usage,
        has_output=any(c.text for c in choices),
        usage_only=not choices and usage is not None,
    )
