"""One Responses request from its decoded body to its answer, through the router.

Routing plans on the request translated onto chat, so every constraint, capability and
price applies as for chat; each try then runs the operation its deployment calls for: the
upstream's own Responses API where it has one, the chat path and a translation back
elsewhere. Retries, fallbacks, health, metrics and `routing_metadata` are the router's,
the same as for chat.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping

import msgspec
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import ASGIApp
from msgspec import Raw

from gateway.answers import success_headers, with_metadata
from gateway.auth import Caller
from gateway.ingress.responses.config import ResponsesConfig
from gateway.ingress.responses.decoding import DecodedBody
from gateway.ingress.responses.events import StreamTranslator
from gateway.ingress.responses.from_chat import Echo, new_id, response_from_chat
from gateway.ingress.responses.native import forwarded_fields, responses_names
from gateway.ingress.responses.store import ResponseStore, StoredResponse
from gateway.ingress.responses.stream import sse_frames
from gateway.ingress.responses.to_chat import ChatTranslation, translate
from gateway.metrics import GatewayMetrics
from gateway.raw_response import JSONBytes
from providers.base import Provider, ProviderCall, ProviderResponse, StreamChunk
from providers.errors import InvalidRequest
from providers.openai.responses import ResponsesAPI, ResponsesCall
from routing.plan import Candidate, Plan
from routing.router import Router

_encode = msgspec.json.encode
_input_items = msgspec.json.Decoder(list[Raw])
_output_items = msgspec.json.Decoder(list[Raw])
_extensions = msgspec.json.Decoder(dict[str, dict[str, Raw]] | None)


class _Id(msgspec.Struct):
    id: str = ""


_id_of = msgspec.json.Decoder(_Id)
_str = msgspec.json.Decoder(str)


def _history(previous: StoredResponse | None) -> list[Raw] | None:
    """The conversation so far, when the gateway kept the whole previous response
    (rather than a marker of the upstream that holds it)."""
    return previous.items if previous is not None and previous.provider is None else None


class _Turn:
    """What one request's tries share."""

    def __init__(
        self,
        decoded: DecodedBody,
        translation: ChatTranslation,
        previous: StoredResponse | None,
        caller: Caller,
        request_id: str,
    ) -> None:
        self.request = decoded.request
        self.fields = decoded.fields
        self.translation = translation
        self.chat = translation.request
        self.caller = caller
        self.request_id = request_id
        self.response_id = new_id("resp")
        self.created_at = int(time.time())
        self.echo = Echo(decoded.request, decoded.fields)
        # the conversation so far, when the gateway kept the previous response
        self.history = (
            previous.items if previous is not None and previous.provider is None else None
        )
        self._native: dict[str, Raw] | None = None
        self._extensions: dict[str, dict[str, Raw]] | None = None

    def native_call(self, candidate: Candidate, dropped: tuple[str, ...]) -> ResponsesCall:
        if self._native is None:
            self._native = forwarded_fields(self.fields, self.history)
            extensions = self.fields.get("extensions")
            self._extensions = _extensions.decode(extensions) if extensions else None
        return ResponsesCall(
            fields=self._native,
            model=candidate.deployment.model,
            stream=self.request.stream,
            drop=dropped,
            extensions=self._extensions,
        )

    def chat_call(self, candidate: Candidate) -> ProviderCall:
        return ProviderCall(
            request=self.chat,
            model=candidate.deployment.model,
            request_id=self.request_id,
            drop_params=candidate.dropped_params,
        )

    def kept(self, output: Raw, *, created_at: float) -> StoredResponse:
        """This response as the gateway keeps it: the conversation through its answer."""
        return StoredResponse(
            id=self.response_id,
            owner=self.caller.name,
            created_at=created_at,
            items=[*(self.history or ()), *self.input_items(), *_output_items.decode(output)],
        )

    def input_items(self) -> list[Raw]:
        value = self.fields.get("input")
        if value is None or value == Raw(b"null"):
            return []
        if bytes(value)[:1] == b'"':
            return [Raw(b'{"role":"user","content":' + bytes(value) + b"}")]
        return _input_items.decode(value)


class ResponsesService:
    def __init__(
        self,
        router: Router,
        providers: Mapping[str, Provider],
        store: ResponseStore,
        metrics: GatewayMetrics,
        config: ResponsesConfig,
    ) -> None:
        self._router = router
        self._providers = providers
        self.store = store
        self._metrics = metrics
        self._config = config
        # each provider's own Responses API, for those that have one
        self._native: dict[str, ResponsesAPI] = {
            name: provider.responses
            for name, provider in providers.items()
            if provider.responses is not None
        }

    def is_native(self, candidate: Candidate) -> bool:
        return candidate.deployment.provider in self._native

    async def answer(self, decoded: DecodedBody, caller: Caller, request_id: str) -> ASGIApp:
        previous = await self._previous(decoded, caller)
        translation = translate(decoded.request, decoded.fields, _history(previous) or ())
        plan = self._router.plan(translation.request, decoded.options)
        plan = self._narrowed(plan, decoded, translation, previous)
        turn = _Turn(decoded, translation, previous, caller, request_id)
        if decoded.request.stream:
            return await self._stream(turn, decoded, plan)
        return await self._complete(turn, decoded, plan)

    # --- the previous response, and who may serve the next ---------------------------

    async def _previous(self, decoded: DecodedBody, caller: Caller) -> StoredResponse | None:
        previous_id = decoded.request.previous_response_id
        if not isinstance(previous_id, str):
            return None
        stored = await self.store.get(previous_id)
        if stored is None or stored.owner != caller.name:
            return None  # another key's response is not theirs to see, nor to know of
        return stored

    def _narrowed(
        self,
        plan: Plan,
        decoded: DecodedBody,
        translation: ChatTranslation,
        previous: StoredResponse | None,
    ) -> Plan:
        candidates = plan.candidates
        previous_id = decoded.request.previous_response_id
        if isinstance(previous_id, str) and previous is None:
            # not one the gateway kept: only an upstream's own store may know it
            candidates = [c for c in candidates if self.is_native(c)]
            if not candidates:
                raise InvalidRequest(
                    f"Previous response with id '{previous_id}' not found. The gateway "
                    f"keeps responses for {self._config.retention:g} s (none with "
                    "`store: false`), and none of this model's deployments keeps its own; "
                    "send the conversation in `input` instead.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                )
        elif previous is not None and previous.provider is not None:
            holder = previous.provider
            candidates = [
                c for c in candidates if c.deployment.provider == holder and self.is_native(c)
            ]
            if not candidates:
                raise InvalidRequest(
                    f"The previous response '{previous.id}' is held by the provider "
                    f"'{holder}', which cannot serve this request: continue it with a model "
                    f"that '{holder}' serves, or send the conversation in `input`.",
                    param="previous_response_id",
                    code="no_candidate",
                )
        native_only = translation.native_only
        if native_only is not None:
            candidates = [c for c in candidates if self.is_native(c)]
            if not candidates:
                raise InvalidRequest(
                    f"'{native_only.param}' ({native_only.reason}) needs a deployment that "
                    "speaks the Responses API itself (OpenAI or Azure), and no deployment "
                    "of the requested models does.",
                    param=native_only.param,
                    code="no_candidate",
                )
        if candidates is plan.candidates:
            return plan
        return msgspec.structs.replace(plan, candidates=candidates)

    def _dropped(self, turn: _Turn, candidate: Candidate) -> tuple[str, ...]:
        """What the client is told was left out on this deployment, by Responses names."""
        routed = responses_names(candidate.dropped_params)
        if self.is_native(candidate):
            return routed
        return tuple(dict.fromkeys((*turn.translation.dropped, *routed)))

    # --- a whole answer ------------------------------------------------------------

    async def _complete(self, turn: _Turn, decoded: DecodedBody, plan: Plan) -> ASGIApp:
        tried: list[Candidate] = []  # tries run one after another: the last one served

        async def call(candidate: Candidate) -> ProviderResponse:
            tried.append(candidate)
            api = self._native.get(candidate.deployment.provider)
            if api is not None:
                dropped = responses_names(candidate.dropped_params)
                return await api.complete(turn.native_call(candidate, dropped))
            provider = self._providers[candidate.deployment.provider]
            return await provider.complete(turn.chat_call(candidate))

        completed = await self._router.complete(
            turn.chat, decoded.options, turn.request_id, plan=plan, call=call
        )
        metadata = completed.metadata
        self._metrics.observe(metadata, completed.usage, stream=False)
        served = tried[-1]
        if self.is_native(served):
            body = completed.response.body
            self._keep_native(turn, _id_of.decode(body).id, metadata.provider)
        else:
            response = response_from_chat(
                completed.response.body,
                None if metadata.cost.estimated else completed.usage,
                turn.echo,
                turn.response_id,
                model=served.deployment.model,
                summary=turn.translation.summary,
            )
            body = _encode(response)
            if self._keeps(turn):
                self.store.put(turn.kept(Raw(_encode(response.output)), created_at=time.time()))
        headers = success_headers(
            metadata, with_cost=True, dropped_params=self._dropped(turn, served)
        )
        return JSONBytes(with_metadata(body, metadata), headers)

    # --- a stream ------------------------------------------------------------------

    async def _stream(self, turn: _Turn, decoded: DecodedBody, plan: Plan) -> ASGIApp:
        def open_stream(candidate: Candidate) -> AsyncGenerator[StreamChunk, None]:
            api = self._native.get(candidate.deployment.provider)
            if api is not None:
                dropped = responses_names(candidate.dropped_params)
                return api.stream(turn.native_call(candidate, dropped))
            return self._translated(turn, candidate)

        stream = await self._router.stream(
            turn.chat, decoded.options, turn.request_id, plan=plan, open_stream=open_stream
        )
        served = stream.candidate
        native = self.is_native(served)

        def on_completed(response: dict[str, Raw]) -> None:
            if native:
                response_id = _str.decode(response.get("id", Raw(b'""')))
                self._keep_native(turn, response_id, served.deployment.provider)
            elif self._keeps(turn):
                output = response.get("output", Raw(b"[]"))
                self.store.put(turn.kept(output, created_at=time.time()))

        headers = {
            "x-switchboard-provider": served.deployment.provider,
            "x-switchboard-model": served.deployment.model,
            "cache-control": "no-cache",
            "x-accel-buffering": "no",  # nginx in front must not buffer the stream
        }
        dropped = self._dropped(turn, served)
        if dropped:
            headers["x-switchboard-dropped-params"] = ",".join(dropped)
        return ASGIStreamingResponse(
            iterator=sse_frames(stream, self._metrics, on_completed),
            media_type="text/event-stream",
            headers=headers,
        )

    async def _translated(
        self, turn: _Turn, candidate: Candidate
    ) -> AsyncGenerator[StreamChunk, None]:
        provider = self._providers[candidate.deployment.provider]
        translator = StreamTranslator(
            turn.echo,
            turn.response_id,
            candidate.deployment.model,
            summary=turn.translation.summary,
            created_at=turn.created_at,
        )
        chunks = provider.stream(turn.chat_call(candidate))
        try:
            async for chunk in chunks:
                for event in translator.feed(chunk):
                    yield event
        finally:
            await chunks.aclose()
        for event in translator.finish():
            yield event

    # --- keeping responses ---------------------------------------------------------

    def _keeps(self, turn: _Turn) -> bool:
        return self._config.store and turn.request.stores

    def _keep_native(self, turn: _Turn, response_id: str, provider: str) -> None:
        """A marker: the upstream keeps the conversation, the gateway who may continue it
        and where."""
        if response_id and self._keeps(turn):
            self.store.put(
                StoredResponse(
                    id=response_id,
                    owner=turn.caller.name,
                    created_at=time.time(),
                    provider=provider,
                )
            )
