"""What one try at one candidate deployment does with a Messages request.

Routing plans, retries and falls back as for chat (`Router.complete/stream` with these
operations as `call` / `open_stream`); each try picks, for its deployment:

- **native**: a deployment that takes the Messages API's body (Anthropic; Claude on
  Bedrock) gets the client's fields as sent, with the deployment's model id, and
  answers with its own Message or events, passed on as they came;
- **translated**: any other gets the request as chat (`to_chat`) through its chat
  operation, and its answer becomes a Message (`from_chat`, `chat_stream`).

The served try is the last one started (tries run one after the other), so after
dispatch `dropped()` names what that deployment did without.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping

import msgspec
from msgspec import Raw

from gateway.ingress.messages.chat_stream import ChatToMessages
from gateway.ingress.messages.decoding import MessagesInput
from gateway.ingress.messages.from_chat import messages_answer
from gateway.ingress.messages.planning import speaks_messages, with_output_limit
from gateway.ingress.messages.to_chat import Translation
from gateway.ingress.messages.wire import MessageOut
from providers.anthropic.native import MessagesCall, MessagesNative
from providers.base import Provider, ProviderCall, ProviderResponse, StreamChunk
from routing.plan import Candidate


class TranslatedAnswer(ProviderResponse, kw_only=True):
    """A translated deployment's chat answer (`body`, which routing's own count reads
    when the upstream sent no usage) and the Message it becomes (its usage is set once
    routing has priced the answer)."""

    message: MessageOut


class ClientHeaders(msgspec.Struct, frozen=True, kw_only=True):
    """What the client said outside its body that a native deployment gets too."""

    version: str | None = None  # anthropic-version
    betas: tuple[str, ...] = ()  # anthropic-beta
    beta_query: bool = False  # `?beta=true`


class MessagesDispatch:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        source: MessagesInput,
        translation: Translation,
        client: ClientHeaders,
        request_id: str,
        *,
        prompt_tokens: int,
    ) -> None:
        """`prompt_tokens`: the plan's estimate (what an answer without usage reports)."""
        self._providers = providers
        self._prompt_tokens = prompt_tokens
        self._source = source
        self._translation = translation
        self._client = client
        self._request_id = request_id
        self._native_fields: dict[str, Raw] | None = None
        self.served: Candidate | None = None
        self._call: MessagesCall | None = None  # the served try's, when native

    def dropped(self) -> tuple[str, ...]:
        """What the served deployment was not sent, in the client's names."""
        if self._call is not None:
            return tuple(self._call.dropped)
        names = list(self._translation.dropped)
        if self.served is not None:
            names += self._translation.messages_names(self.served.dropped_params)
        return tuple(dict.fromkeys(names))

    def _begin_try(self, candidate: Candidate) -> tuple[Provider, MessagesNative | None]:
        """The candidate's provider, and it again if it takes the Messages body."""
        provider = self._providers[candidate.deployment.provider]
        self.served, self._call = candidate, None
        return provider, speaks_messages(provider, candidate.deployment.model)

    def _messages_call(self, candidate: Candidate) -> MessagesCall:
        if self._native_fields is None:
            self._native_fields = native_fields(self._source)
        self._call = MessagesCall(
            fields=self._native_fields,
            model=candidate.deployment.model,
            version=self._client.version,
            betas=self._client.betas,
            beta_query=self._client.beta_query,
            request_id=self._request_id,
        )
        return self._call

    def _chat_call(self, candidate: Candidate) -> ProviderCall:
        limit = candidate.deployment.capabilities.max_output_tokens
        return ProviderCall(
            request=with_output_limit(self._translation.chat, limit),
            model=candidate.deployment.model,
            request_id=self._request_id,
            drop_params=candidate.dropped_params,
        )

    async def complete(self, candidate: Candidate) -> ProviderResponse:
        provider, native = self._begin_try(candidate)
        if native is not None:
            return await native.complete_messages(self._messages_call(candidate))
        answer = await provider.complete(self._chat_call(candidate))
        message = messages_answer(answer.body, provider=provider.name, request_id=self._request_id)
        return TranslatedAnswer(body=answer.body, usage=answer.usage, message=message)

    def open_stream(self, candidate: Candidate) -> AsyncGenerator[StreamChunk, None]:
        provider, native = self._begin_try(candidate)
        if native is not None:
            return native.stream_messages(self._messages_call(candidate))
        return self._translated_stream(provider, candidate)

    async def _translated_stream(
        self, provider: Provider, candidate: Candidate
    ) -> AsyncGenerator[StreamChunk, None]:
        translator = ChatToMessages(
            prompt_tokens=self._prompt_tokens, provider=provider.name, request_id=self._request_id
        )
        chunks = provider.stream(self._chat_call(candidate))
        try:
            async for chunk in chunks:
                yield translator.feed(chunk)
        finally:
            await chunks.aclose()  # also when the client leaves: closes the upstream request
        for chunk in translator.finish():
            yield chunk


class _BlockView(msgspec.Struct):
    type: str = ""
    signature: str | None = None


_messages_decoder = msgspec.json.Decoder(list[dict[str, Raw]])
_blocks_decoder = msgspec.json.Decoder(list[Raw] | str)
_block_decoder = msgspec.json.Decoder(_BlockView)


def native_fields(source: MessagesInput) -> dict[str, Raw]:
    """The client's fields for a Messages-speaking deployment: as sent, except thinking
    blocks without a signature (a translated deployment's thinking, which Anthropic
    refuses to take back: it verifies every signature), which are left out."""
    if not _has_unsigned_thinking(source):
        return source.fields
    fields = dict(source.fields)
    messages = _messages_decoder.decode(fields["messages"])
    typed = source.request.messages
    assert isinstance(typed, list)  # the same messages, decoded
    for message, read in zip(messages, typed, strict=True):
        content = message.get("content")
        if content is None or read.role != "assistant":
            continue
        blocks = _blocks_decoder.decode(content)
        if isinstance(blocks, list):
            kept = [block for block in blocks if not _unsigned_thinking(block)]
            message["content"] = Raw(msgspec.json.encode(kept))
    fields["messages"] = Raw(msgspec.json.encode(messages))
    return fields


def _has_unsigned_thinking(source: MessagesInput) -> bool:
    messages = source.request.messages
    return isinstance(messages, list) and any(
        message.role == "assistant"
        and isinstance(message.content, list)
        and any(block.type == "thinking" and not block.signature for block in message.content)
        for message in messages
    )


def _unsigned_thinking(block: Raw) -> bool:
    view = _block_decoder.decode(block)
    return view.type == "thinking" and not view.signature
