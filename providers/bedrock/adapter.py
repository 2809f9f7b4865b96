"""The Bedrock adapter: OpenAI chat requests through the Converse API, SigV4-signed."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, Mapping

import msgspec

from providers.anthropic.native import (
    MAX_REFUSALS,
    MessagesCall,
    MessagesNative,
    message_answer,
    token_count,
)
from providers.base import Provider, ProviderCall, ProviderResponse, StreamChunk
from providers.bedrock.config import BedrockConfig
from providers.bedrock.embeddings import BedrockEmbeddings
from providers.bedrock.errors import classify_http_error
from providers.bedrock.extra import require_botocore
from providers.bedrock.invoke import (
    count_tokens_body,
    drop_refused_by_bedrock,
    invoke_body,
    relayed_events,
)
from providers.bedrock.request import build_request, dropped_params, is_anthropic_model
from providers.bedrock.response import openai_response
from providers.bedrock.signing import BedrockSigner, model_path
from providers.bedrock.stream import StreamTranslator, openai_chunks
from providers.bedrock.wire import error_decoder, response_decoder
from providers.capabilities import Capabilities
from providers.chat_types import ChatRequest
from providers.errors import UpstreamProtocolError
from providers.http_client import UpstreamReply

_EVENT_STREAM = "application/vnd.amazon.eventstream"
_JSON = "application/json"


class BedrockProvider(Provider, MessagesNative):
    # what Converse can do in general; per model the catalogue and config correct it
    # (e.g. no images for Llama 3.3): no logprobs, one answer per request, a JSON schema
    # through a forced tool, reasoning through Claude's thinking (dropped for others)
    capabilities = Capabilities(
        tools=True,
        vision=True,
        json_schema=True,
        reasoning=True,
        logprobs=False,
        multiple_choices=False,
    )

    def __init__(self, name: str, config: BedrockConfig) -> None:
        super().__init__(name)
        require_botocore()  # a clear error, not an ImportError, if the extra is missing
        self._config = config
        self._endpoint = config.endpoint
        self._signer = BedrockSigner(
            name,
            config.region,
            config.access_key_id,
            config.secret_access_key,
            config.session_token,
        )
        self._headers = {**config.headers, "content-type": "application/json"}
        self._http = config.http_client(name)
        self.embeddings = BedrockEmbeddings(
            name, self._http, self._signer, self._endpoint, config.headers
        )

    def capabilities_for(self, model: str) -> Capabilities:
        # only Claude thinks through Converse: for other models `reasoning_effort` is
        # dropped and named, not silently ignored
        if is_anthropic_model(model):
            return self.capabilities
        return msgspec.structs.replace(self.capabilities, reasoning=False)

    def unsupported_params(self, request: ChatRequest, capabilities: Capabilities) -> list[str]:
        dropped = super().unsupported_params(request, capabilities)
        return dropped + [
            name
            for name in dropped_params(request, reasoning=capabilities.reasoning)
            if name not in dropped
        ]

    async def complete(self, call: ProviderCall) -> ProviderResponse:
        upstream = build_request(
            call.request, call.model, self._config, call.drop_params, request_id=call.request_id
        )
        url = self._endpoint + model_path(call.model, "converse")
        headers = await self._signer.sign(
            url, upstream.body, {**self._headers, "accept": "application/json"}
        )
        reply = await self._http.post(url, upstream.body, headers)
        if reply.status != 200:
            raise reply.annotate(
                classify_http_error(reply.status, reply.headers, reply.body, self.name)
            )
        try:
            answer = response_decoder.decode(reply.body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamProtocolError(
                f"{self.name} answered with something that is not a Converse response: {exc}",
                provider=self.name,
                upstream_status=reply.status,
            ) from exc
        response = openai_response(
            answer,
            response_id=self._response_id(reply.headers, call),
            model=call.model,
            created=int(time.time()),
            json_tool=upstream.json_tool,
            provider=self.name,
        )
        return ProviderResponse(body=msgspec.json.encode(response), usage=response.usage)

    async def stream(self, call: ProviderCall) -> AsyncGenerator[StreamChunk, None]:
        upstream = build_request(
            call.request, call.model, self._config, call.drop_params, request_id=call.request_id
        )
        url = self._endpoint + model_path(call.model, "converse-stream")
        headers = await self._signer.sign(
            url, upstream.body, {**self._headers, "accept": _EVENT_STREAM}
        )
        async with self._http.open_stream(url, upstream.body, headers) as response:
            if response.status != 200:
                raise classify_http_error(
                    response.status, response.headers, await response.read(), self.name
                )
            translator = StreamTranslator(
                response_id=self._response_id(response.headers, call),
                model=call.model,
                created=int(time.time()),
                json_tool=upstream.json_tool,
                provider=self.name,
            )
            async for chunk in openai_chunks(response.blocks(), translator, self.name):
                yield chunk

    # --- Messages API clients: Claude's native body (InvokeModel) -----------------------

    def speaks_messages(self, model: str) -> bool:
        return is_anthropic_model(model)

    async def _signed(self, url: str, body: bytes, accept: str) -> dict[str, str]:
        return await self._signer.sign(url, body, {**self._headers, "accept": accept})

    def _refused(self, call: MessagesCall, reply: UpstreamReply, tries: int) -> bool:
        """Whether the refusal named only what can be left out (which is now)."""
        if reply.status != 400 or tries >= MAX_REFUSALS:
            return False
        try:
            message = error_decoder.decode(reply.body).text
        except (msgspec.DecodeError, msgspec.ValidationError):
            return False
        return drop_refused_by_bedrock(call, message)

    async def complete_messages(self, call: MessagesCall) -> ProviderResponse:
        url = self._endpoint + model_path(call.model, "invoke")
        for tries in range(MAX_REFUSALS + 1):
            body = invoke_body(call)
            reply = await self._http.post(url, body, await self._signed(url, body, _JSON))
            if reply.status == 200:
                return message_answer(reply.body, self.name)
            if not self._refused(call, reply, tries):
                break
        raise reply.annotate(
            classify_http_error(reply.status, reply.headers, reply.body, self.name)
        )

    async def stream_messages(self, call: MessagesCall) -> AsyncGenerator[StreamChunk, None]:
        url = self._endpoint + model_path(call.model, "invoke-with-response-stream")
        for tries in range(MAX_REFUSALS + 1):
            body = invoke_body(call)
            headers = await self._signed(url, body, _EVENT_STREAM)
            async with self._http.open_stream(url, body, headers) as response:
                if response.status != 200:
                    reply = UpstreamReply(response.status, response.headers, await response.read())
                    if self._refused(call, reply, tries):
                        continue
                    raise classify_http_error(reply.status, reply.headers, reply.body, self.name)
                async for chunk in relayed_events(response.blocks(), self.name):
                    yield chunk
                return

    async def count_message_tokens(self, call: MessagesCall) -> int:
        """Bedrock's CountTokens over the invoke body (not every model takes it: a
        refusal is an error like any other, and the caller estimates instead)."""
        url = self._endpoint + model_path(call.model, "count-tokens")
        body = count_tokens_body(call)
        reply = await self._http.post(url, body, await self._signed(url, body, _JSON))
        if reply.status != 200:
            raise reply.annotate(
                classify_http_error(reply.status, reply.headers, reply.body, self.name)
            )
        return token_count(reply.body, "inputTokens", self.name)

    def _response_id(self, headers: Mapping[str, str], call: ProviderCall) -> str:
        """Converse answers carry no id; AWS's request id names the answer instead."""
        request_id = headers.get("x-amzn-requestid") or call.request_id or uuid.uuid4().hex
        return f"chatcmpl-{request_id}"

    async def aclose(self) -> None:
        await self._http.aclose()
