"""The Anthropic adapter: OpenAI requests in, Messages API calls out, OpenAI answers back."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator

import msgspec

from providers.anthropic.config import AnthropicConfig
from providers.anthropic.errors import classify_status, error_message
from providers.anthropic.native import (
    MAX_REFUSALS,
    MessagesCall,
    MessagesNative,
    drop_refused_by_anthropic,
    message_answer,
    token_count,
)
from providers.anthropic.relay import MessagesRelay
from providers.anthropic.request import build_request, dropped_params
from providers.anthropic.response import openai_response
from providers.anthropic.stream import AnthropicStreamTranslator
from providers.anthropic.wire import response_decoder
from providers.base import Provider, ProviderCall, ProviderResponse, StreamChunk
from providers.capabilities import Capabilities
from providers.chat_types import ChatRequest
from providers.errors import ProviderError, UpstreamProtocolError, UpstreamStreamCut
from providers.http_client import UpstreamReply
from providers.sse import SSEDecoder


class AnthropicProvider(Provider, MessagesNative):
    # no logprobs and one answer per request; `response_format: json_schema` is served
    # through a forced tool call
    capabilities = Capabilities(
        tools=True,
        vision=True,
        json_schema=True,
        reasoning=True,
        logprobs=False,
        multiple_choices=False,
    )

    def __init__(self, name: str, config: AnthropicConfig) -> None:
        super().__init__(name)
        self._config = config
        # the documented base URL has no version; one configured with it still works
        self._url = config.base_url.rstrip("/").removesuffix("/v1") + "/v1/messages"
        self._count_url = self._url + "/count_tokens"
        headers = {
            "content-type": "application/json",
            "anthropic-version": config.anthropic_version,
            **config.headers,
        }
        if config.api_key:
            headers["x-api-key"] = config.api_key
        self._headers = {**headers, "accept": "application/json"}
        self._stream_headers = {**headers, "accept": "text/event-stream"}
        self._http = config.http_client(name)
        self._version = config.anthropic_version

    def unsupported_params(self, request: ChatRequest, capabilities: Capabilities) -> list[str]:
        dropped = super().unsupported_params(request, capabilities)
        return dropped + dropped_params(request, self._config, already=dropped)

    async def complete(self, call: ProviderCall) -> ProviderResponse:
        upstream = build_request(
            call.request,
            call.model,
            self._config,
            stream=False,
            dropped=call.drop_params,
            request_id=call.request_id,
        )
        reply = await self._http.post(self._url, upstream.body, self._headers)
        if reply.status != 200:
            raise reply.annotate(
                classify_status(reply.status, reply.headers, reply.body, self.name)
            )
        try:
            answer = response_decoder.decode(reply.body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamProtocolError(
                f"{self.name} answered with something that is not a message: {exc}",
                provider=self.name,
                upstream_status=reply.status,
            ) from exc
        response = openai_response(answer, json_tool=upstream.json_tool, created=int(time.time()))
        return ProviderResponse(body=msgspec.json.encode(response), usage=response.usage)

    async def stream(self, call: ProviderCall) -> AsyncGenerator[StreamChunk, None]:
        upstream = build_request(
            call.request,
            call.model,
            self._config,
            stream=True,
            dropped=call.drop_params,
            request_id=call.request_id,
        )
        translator = AnthropicStreamTranslator(
            provider=self.name, json_tool=upstream.json_tool, created=int(time.time())
        )
        async with self._http.open_stream(self._url, upstream.body, self._stream_headers) as resp:
            if resp.status != 200:
                raise classify_status(resp.status, resp.headers, await resp.read(), self.name)
            decoder = SSEDecoder()
            async for block in resp.blocks():
                chunks: list[StreamChunk] = []
                failure: ProviderError | None = None
                try:
                    for event in decoder.feed_block(block):
                        chunks += translator.feed(event.data)
                except ProviderError as exc:
                    failure = exc  # what arrived before the failure still goes out first
                for chunk in chunks[:-1]:
                    chunk.more_buffered = True
                for chunk in chunks:
                    yield chunk
                if failure is not None:
                    raise failure
                if translator.finished:
                    return
        raise UpstreamStreamCut(
            f"{self.name} ended the stream before message_stop", provider=self.name
        )

    # --- the client's own Messages requests (the /v1/messages ingress) ------------------

    def speaks_messages(self, model: str) -> bool:
        return True

    def _native(self, call: MessagesCall, url: str, *, stream: bool) -> tuple[str, dict[str, str]]:
        """Where the call goes and with which headers: ours (the key, the configured
        headers), the client's API version, or the configured one, and its betas."""
        headers = dict(self._stream_headers if stream else self._headers)
        headers["anthropic-version"] = call.version or self._version
        if call.betas:
            headers["anthropic-beta"] = ",".join(call.betas)
        return (url + "?beta=true" if call.beta_query else url), headers

    def _refused(self, call: MessagesCall, reply: UpstreamReply, tries: int) -> bool:
        """Whether the refusal named only what can be left out (which is now)."""
        return (
            reply.status == 400
            and tries < MAX_REFUSALS
            and drop_refused_by_anthropic(call, error_message(reply.body))
        )

    async def complete_messages(self, call: MessagesCall) -> ProviderResponse:
        for tries in range(MAX_REFUSALS + 1):
            url, headers = self._native(call, self._url, stream=False)
            reply = await self._http.post(url, native_body(call), headers)
            if reply.status == 200:
                return message_answer(reply.body, self.name)
            if not self._refused(call, reply, tries):
                break
        raise reply.annotate(classify_status(reply.status, reply.headers, reply.body, self.name))

    async def stream_messages(self, call: MessagesCall) -> AsyncGenerator[StreamChunk, None]:
        for tries in range(MAX_REFUSALS + 1):
            url, headers = self._native(call, self._url, stream=True)
            async with self._http.open_stream(url, native_body(call), headers) as resp:
                if resp.status != 200:
                    reply = UpstreamReply(resp.status, resp.headers, await resp.read())
                    if self._refused(call, reply, tries):
                        continue
                    raise classify_status(reply.status, reply.headers, reply.body, self.name)
                async for chunk in self._relayed(resp.blocks()):
                    yield chunk
                return

    async def _relayed(self, blocks: AsyncIterator[bytes]) -> AsyncGenerator[StreamChunk, None]:
        relay = MessagesRelay(self.name)
        decoder = SSEDecoder()
        async for block in blocks:
            chunks: list[StreamChunk] = []
            failure: ProviderError | None = None
            try:
                for event in decoder.feed_block(block):
                    chunks.append(relay.feed(event.data))
            except ProviderError as exc:
                failure = exc  # what arrived before the failure still goes out first
            for chunk in chunks[:-1]:
                chunk.more_buffered = True
            for chunk in chunks:
                yield chunk
            if failure is not None:
                raise failure
            if relay.finished:
                return
        raise UpstreamStreamCut(
            f"{self.name} ended the stream before message_stop", provider=self.name
        )

    async def count_message_tokens(self, call: MessagesCall) -> int:
        """`POST /v1/messages/count_tokens` with the client's body."""
        for tries in range(MAX_REFUSALS + 1):
            url, headers = self._native(call, self._count_url, stream=False)
            reply = await self._http.post(url, native_body(call), headers)
            if reply.status == 200:
                return token_count(reply.body, "input_tokens", self.name)
            if not self._refused(call, reply, tries):
                break
        raise reply.annotate(classify_status(reply.status, reply.headers, reply.body, self.name))

    async def aclose(self) -> None:
        await self._http.aclose()


def native_body(call: MessagesCall) -> bytes:
    """The client's body with the deployment's model id, every other field's bytes as
    the client sent them (in the client's order)."""
    fields = dict(call.fields)
    fields["model"] = msgspec.Raw(msgspec.json.encode(call.model))
    return msgspec.json.encode(fields)
