"""The OpenAI-wire adapter: forwards the client's body nearly byte for byte.

`OpenAIWireProvider` is the forwarding itself (body adjustment, the call, the stream);
subclasses only say where a call goes and how it authenticates: `OpenAIProvider` for
OpenAI and every OpenAI-compatible vendor (one class, many presets), and the Azure
adapter in `providers/azure/`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncGenerator, Collection

import msgspec
from msgspec import Raw

from providers.base import Provider, ProviderCall, ProviderResponse, StreamChunk
from providers.capabilities import Capabilities, droppable_unsupported
from providers.chat_types import ChatRequest
from providers.errors import (
    ProviderError,
    UpstreamProtocolError,
    UpstreamStreamCut,
    UpstreamUnavailable,
)
from providers.openai.completions import OpenAICompletions
from providers.openai.config import OpenAIConfig, UpstreamOptions
from providers.openai.embeddings import OpenAIEmbeddings
from providers.openai.errors import classify_status
from providers.openai.presets import ForwardingProfile
from providers.openai.responses import ResponsesAPI
from providers.openai.wire import (
    ChunkView,
    UpstreamErrorDetail,
    chunk_decoder,
    completion_decoder,
)
from providers.sse import SSEData

_encode = msgspec.json.encode
_INCLUDE_USAGE = Raw(b'{"include_usage":true}')
_NULL = Raw(b"null")
_DONE = b"[DONE]"
_OUTPUT_LIMIT_FIELDS = ("max_completion_tokens", "max_tokens")
_AS_SENT = ForwardingProfile()


def upstream_body(
    call: ProviderCall,
    profile: ForwardingProfile = _AS_SENT,
    dropped: Collection[str] = (),
    extension: str = "openai",
) -> bytes:
    """The client's fields as sent, less the `dropped` ones, adjusted to the profile,
    with the deployment's model id, our usage request and the client's extensions."""
    request = call.request
    fields = {name: value for name, value in request.raw.items() if name not in dropped}
    fields["model"] = Raw(_encode(call.model))
    _place_output_limit(fields, profile)
    for name, upstream_name in profile.renames:
        if name in fields:
            fields[upstream_name] = fields.pop(name)
    if request.stream and profile.stream_usage:
        # the closing usage chunk is how we price a stream
        options = fields.get("stream_options")
        if options is None or options == _NULL:
            fields["stream_options"] = _INCLUDE_USAGE
        else:
            merged = msgspec.json.decode(options, type=dict[str, Raw])
            merged["include_usage"] = Raw(b"true")
            fields["stream_options"] = Raw(_encode(merged))
    if isinstance(request.extensions, dict):
        fields.update(request.extensions.get(extension, {}))
    return _encode(fields)


def _place_output_limit(fields: dict[str, Raw], profile: ForwardingProfile) -> None:
    """Carry the client's token cap in the one field the upstream wants."""
    target = profile.output_limit_field
    if target == "as_sent":
        return
    # max_completion_tokens first: it is what `ChatRequest.output_limit` honours too
    present = [fields.pop(name) for name in _OUTPUT_LIMIT_FIELDS if name in fields]
    limits = [value for value in present if value != _NULL]
    if limits:
        fields[target] = limits[0]


class OpenAIWireProvider(Provider):
    """Forwarding to an upstream that speaks OpenAI Chat Completions."""

    extension = "openai"  # the key of `extensions` merged into this upstream's body
    # where the request id goes: OpenAI documents `X-Client-Request-Id`; vLLM and most
    # OpenAI-compatible servers and proxies read `x-request-id`
    request_id_headers: tuple[str, ...] = ("x-request-id", "x-client-request-id")

    def __init__(
        self,
        name: str,
        options: UpstreamOptions,
        profile: ForwardingProfile,
        credentials: dict[str, str],
    ) -> None:
        super().__init__(name)
        self.profile = profile
        self.capabilities = profile.capabilities
        # the credentials last: a configured header must not replace them
        self._headers = {"content-type": "application/json", **options.headers, **credentials}
        self._stream_headers = {**self._headers, "accept": "text/event-stream"}
        self._http = options.http_client(name, self.request_id_headers)

    @abstractmethod
    def url_for(self, call: ProviderCall) -> str:
        """Where this call is sent."""

    def unsupported_params(self, request: ChatRequest, capabilities: Capabilities) -> list[str]:
        dropped = droppable_unsupported(request, capabilities)
        dropped += [
            name for name in self.profile.drop_params if name in request.raw and name not in dropped
        ]
        if not self.profile.stream_usage and "stream_options" in request.raw:
            dropped.append("stream_options")
        return dropped

    def body_for(self, call: ProviderCall) -> bytes:
        # routing asked `unsupported_params` with the deployment's capabilities
        return upstream_body(call, self.profile, call.drop_params, self.extension)

    async def complete(self, call: ProviderCall) -> ProviderResponse:
        reply = await self._http.post(self.url_for(call), self.body_for(call), self._headers)
        if reply.status != 200:
            raise reply.annotate(
                classify_status(reply.status, reply.headers, reply.body, self.name)
            )
        try:
            view = completion_decoder.decode(reply.body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamProtocolError(
                f"{self.name} answered with something that is not a chat completion: {exc}",
                provider=self.name,
                upstream_status=reply.status,
            ) from exc
        usage = view.usage.usage() if view.usage is not None else None
        return ProviderResponse(body=reply.body.strip(), usage=usage)

    async def stream(self, call: ProviderCall) -> AsyncGenerator[StreamChunk, None]:
        url, body = self.url_for(call), self.body_for(call)
        async with self._http.open_stream(url, body, self._stream_headers) as response:
            if response.status != 200:
                raise classify_status(
                    response.status, response.headers, await response.read(), self.name
                )
            finished = False
            reader = SSEData()
            async for block in response.blocks():
                # `more_buffered` is known only once the block's events are read: one
                # that is passed over (or `[DONE]`) must not keep a chunk waiting
                chunks: list[StreamChunk] = []
                failure: ProviderError | None = None
                done = False
                for data in reader.feed_block(block):
                    if data == _DONE:
                        done = True
                        break
                    if b"\n" in data:
                        # one event's JSON split over several `data:` lines, joined with
                        # "\n" by the SSE rules; outside strings that is only whitespace in
                        # JSON, and a chunk must be one line to be framed as one `data:`
                        data = data.replace(b"\n", b" ")
                    try:
                        chunk = self._read_chunk(data)
                    except ProviderError as exc:
                        failure = exc  # after what arrived before it has gone out
                        break
                    finished = finished or any(c.finish_reason for c in chunk.choices or ())
                    if not chunk.choices and chunk.usage is None:
                        # nothing an OpenAI client can use: Azure opens its streams with
                        # such a chunk (only `prompt_filter_results`), which must not
                        # become the stream's first chunk (its id is empty)
                        continue
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
            raise UpstreamUnavailable(
                f"{self.name}: {said or 'an error in place of a chunk'}", provider=self.name
            )
        return chunk

    async def aclose(self) -> None:
        await self._http.aclose()


class OpenAIProvider(OpenAIWireProvider):
    """OpenAI and every OpenAI-compatible vendor: what differs is the config's preset."""

    def __init__(self, name: str, config: OpenAIConfig) -> None:
        headers = {"authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        super().__init__(name, config, config.profile(), headers)
        base_url = config.resolved_base_url.rstrip("/")
        self._url = base_url + "/chat/completions"
        embeddings_url, completions_url = base_url + "/embeddings", base_url + "/completions"
        self.embeddings = OpenAIEmbeddings(
            name, self._http, self._headers, lambda _: embeddings_url, self.extension
        )
        if self.profile.responses_api:
            url = base_url + "/responses"
            self.responses = ResponsesAPI(name, self._http, self._headers, url, self.extension)
        if self.profile.legacy_completions:
            self.legacy_completions = OpenAICompletions(
                name,
                self._http,
                self._headers,
                lambda _: completions_url,
                self.extension,
                stream_usage=self.profile.stream_usage,
            )

    def url_for(self, call: ProviderCall) -> str:
        return self._url


def _stream_chunk(data: bytes, chunk: ChunkView) -> StreamChunk:
    choices = chunk.choices or []
    has_output = False
    for choice in choices:
        delta = choice.delta
        if delta is not None and (
            delta.content
            or delta.tool_calls
            or delta.reasoning_content
            or delta.reasoning
            or delta.refusal
            or delta.function_call != _NULL
        ):
            has_output = True
            break
    usage = chunk.usage.usage() if chunk.usage is not None else None
    return StreamChunk(
        data=data,
        usage=usage,
        has_output=has_output,
        usage_only=not choices and usage is not None,
    )
