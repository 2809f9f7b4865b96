"""The Gemini adapter: `models/{model}:generateContent`, and its SSE stream."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable
from urllib.parse import quote

import msgspec

from providers.base import Provider, ProviderCall, ProviderResponse, StreamChunk
from providers.capabilities import Capabilities
from providers.chat_types import ChatRequest
from providers.errors import ProviderError, UpstreamProtocolError, UpstreamStreamCut
from providers.gemini.config import GeminiConfig
from providers.gemini.embeddings import GeminiEmbeddings
from providers.gemini.errors import classify_error, classify_status
from providers.gemini.request import gemini_body
from providers.gemini.response import (
    StreamTranslator,
    ToolCallIds,
    chat_response,
    new_tool_call_id,
)
from providers.gemini.wire import GeminiResponse, response_decoder
from providers.sse import SSEDecoder

_encode = msgspec.json.encode
# request fields the translation reads (request.py); any other field a client sends has
# no Gemini equivalent and is named as dropped
_TRANSLATED = frozenset(
    {
        "messages",
        "model",
        "stream",
        "stream_options",  # usage always closes our streams
        "temperature",
        "top_p",
        "top_k",
        "n",
        "stop",
        "max_tokens",
        "max_completion_tokens",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "tools",
        "tool_choice",
        "response_format",
        "reasoning_effort",
        "parallel_tool_calls",  # true is what Gemini does anyway; false is named below
    }
)


def _model_path(model: str) -> str:
    """`models/…` for a model id, kept as given for `models/…` and `tunedModels/…`."""
    if model.startswith(("models/", "tunedModels/")):
        prefix, _, name = model.partition("/")
        return f"{prefix}/{quote(name, safe='')}"
    return f"models/{quote(model, safe='')}"


class GeminiProvider(Provider):
    # logprobs: Gemini's `responseLogprobs` is not translated (few models offer it)
    capabilities = Capabilities(
        tools=True,
        vision=True,
        json_schema=True,
        reasoning=True,
        logprobs=False,
        multiple_choices=True,  # candidateCount
    )

    def __init__(
        self,
        name: str,
        config: GeminiConfig,
        *,
        clock: Callable[[], float] = time.time,
        tool_call_ids: ToolCallIds = new_tool_call_id,
    ) -> None:
        super().__init__(name)
        self._clock = clock  # `created` of answers; injected for golden tests
        self._tool_call_ids = tool_call_ids
        self._base_url = config.base_url.rstrip("/")
        self._budgets = dict(config.thinking_budgets)
        headers = {"content-type": "application/json", **config.headers}
        if config.api_key:
            headers["x-goog-api-key"] = config.api_key
        self._headers = headers
        self._stream_headers = {**headers, "accept": "text/event-stream"}
        self._http = config.http_client(name)
        self.embeddings = GeminiEmbeddings(name, self._http, headers, self._url, _model_path)

    def unsupported_params(self, request: ChatRequest, capabilities: Capabilities) -> list[str]:
        dropped = super().unsupported_params(request, capabilities)
        dropped += [p for p in request.raw if p not in _TRANSLATED and p not in dropped]
        if request.parallel_tool_calls is False:
            dropped.append("parallel_tool_calls")  # Gemini may call several at once regardless
        return dropped

    def _url(self, model: str, method: str) -> str:
        return f"{self._base_url}/{_model_path(model)}:{method}"

    def _decode(self, data: bytes, what: str) -> GeminiResponse:
        try:
            return response_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamProtocolError(
                f"{self.name} answered with something that is not {what}: {exc}",
                provider=self.name,
            ) from exc

    async def complete(self, call: ProviderCall) -> ProviderResponse:
        body = gemini_body(call, self._budgets)
        reply = await self._http.post(self._url(call.model, "generateContent"), body, self._headers)
        if reply.status != 200:
            raise reply.annotate(
                classify_status(reply.status, reply.headers, reply.body, self.name)
            )
        answer = self._decode(reply.body, "a GenerateContentResponse")
        if answer.error is not None:
            raise classify_error(answer.error.code or 500, reply.headers, answer.error, self.name)
        if not answer.candidates and answer.prompt_feedback is None:
            # neither an answer nor a blocked prompt: not a GenerateContentResponse at all
            raise UpstreamProtocolError(
                f"{self.name} answered with no candidates and no prompt feedback",
                provider=self.name,
            )
        response = chat_response(
            answer,
            fallback_id=f"chatcmpl-{call.request_id}",
            model=call.model,
            created=int(self._clock()),
            new_id=self._tool_call_ids,
        )
        return ProviderResponse(body=_encode(response), usage=response.usage)

    async def stream(self, call: ProviderCall) -> AsyncGenerator[StreamChunk, None]:
        body = gemini_body(call, self._budgets)
        url = self._url(call.model, "streamGenerateContent") + "?alt=sse"
        translator = StreamTranslator(
            fallback_id=f"chatcmpl-{call.request_id}",
            model=call.model,
            created=int(self._clock()),
            new_id=self._tool_call_ids,
        )
        async with self._http.open_stream(url, body, self._stream_headers) as response:
            if response.status != 200:
                raise classify_status(
                    response.status, response.headers, await response.read(), self.name
                )
            decoder = SSEDecoder()
            async for block in response.blocks():
                chunks: list[StreamChunk] = []
                failure: ProviderError | None = None
                for event in decoder.feed_block(block):
                    try:
                        chunks += self._stream_chunks(event.data, translator)
                    except ProviderError as exc:
                        failure = exc  # after what arrived before it has gone out
                        break
                last = len(chunks) - 1
                for position, chunk in enumerate(chunks):
                    chunk.more_buffered = position < last
                    yield chunk
                if failure is not None:
                    raise failure
        if not translator.finished:
            raise UpstreamStreamCut(
                f"{self.name} ended the stream before it was complete", provider=self.name
            )
        closing = translator.usage_chunk()
        if closing is not None:
            yield StreamChunk(data=_encode(closing), usage=translator.usage, usage_only=True)

    def _stream_chunks(self, data: bytes, translator: StreamTranslator) -> list[StreamChunk]:
        fragment = self._decode(data, "a stream fragment")
        if fragment.error is not None:
            error = fragment.error
            raise classify_error(error.code or 500, {}, error, self.name)
        return [
            StreamChunk(data=_encode(chunk), has_output=has_output)
            for chunk, has_output in translator.feed(fragment)
        ]

    async def aclose(self) -> None:
        await self._http.aclose()
