"""The Anthropic adapter: OpenAI requests in, Messages API calls out, OpenAI answers back."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator

import msgspec

from providers.anthropic.config import AnthropicConfig
from providers.anthropic.errors import classify_status
from providers.anthropic.request import build_request, dropped_params
from providers.anthropic.response import openai_response
from providers.anthropic.stream import AnthropicStreamTranslator
from providers.anthropic.wire import response_decoder
from providers.base import Provider, ProviderCall, ProviderResponse, StreamChunk
from providers.capabilities import Capabilities
from providers.chat_types import ChatRequest
from providers.errors import ProviderError, UpstreamProtocolError, UpstreamStreamCut
from providers.sse import SSEDecoder


class AnthropicProvider(Provider):
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

    async def aclose(self) -> None:
        await self._http.aclose()
