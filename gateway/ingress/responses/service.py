"""One Responses request from its decoded body to its answer, through the router.

Routing plans on what the request needs (`planning.py`: the chat request it translates
to, and a screen for what only some deployments can serve), so every constraint,
capability and price applies as for chat; admission comes between planning and
dispatch, as for every endpoint; each try then runs the operation its deployment calls
for: the upstream's own Responses API where it has one, the chat path and a translation
back elsewhere. Retries, fallbacks, health, `routing_metadata` and the request's account
(from which metrics, the ledger and the request log are made) are the same as chat's.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Mapping
from functools import cached_property

import msgspec
from litestar.response.streaming import ASGIStreamingResponse
from litestar.types import ASGIApp
from msgspec import Raw

from gateway.accounting import RequestAccount
from gateway.answers import success_headers, with_metadata
from gateway.auth import Caller
from gateway.governance.admission import Governance
from gateway.governance.config import LimitsConfig
from gateway.governance.input_limits import check_request
from gateway.ingress.responses.config import ResponsesConfig
from gateway.ingress.responses.decoding import DecodedBody
from gateway.ingress.responses.events import StreamTranslator
from gateway.ingress.responses.from_chat import Echo, new_id, response_from_chat
from gateway.ingress.responses.native import forwarded_fields
from gateway.ingress.responses.planning import Previous, responses_needs
from gateway.ingress.responses.store import ResponseStore, StoredResponse
from gateway.ingress.responses.stream import sse_frames
from gateway.ingress.responses.to_chat import ChatTranslation, translate
from gateway.raw_response import JSONBytes
from providers.base import Provider, ProviderCall, ProviderResponse, StreamChunk
from providers.errors import InvalidRequest
from providers.openai.responses import ResponsesCall
from routing.errors import NoCandidate
from routing.options import RouteOptions
from routing.plan import Candidate, Plan
from routing.router import Router

_input_items = msgspec.json.Decoder(list[Raw])
_extensions = msgspec.json.Decoder(dict[str, dict[str, Raw]] | None)
_str = msgspec.json.Decoder(str)


class _Id(msgspec.Struct):
    id: str = ""


_id_of = msgspec.json.Decoder(_Id)


class _Turn:
    """What one request's tries share."""

    def __init__(
        self,
        decoded: DecodedBody,
        translation: ChatTranslation,
        previous: Previous | None,
        caller: Caller,
        request_id: str,
    ) -> None:
        self.request = decoded.request
        self.fields = decoded.fields
        self.options: RouteOptions = decoded.options
        self.translation = translation
        self.chat = translation.request
        self.caller = caller
        self.request_id = request_id
        self.response_id = new_id("resp")
        self.created_at = int(time.time())
        self.history = previous.history if previous is not None else None
        self._native: dict[str, Raw] | None = None
        self._extensions: dict[str, dict[str, Raw]] | None = None

    @cached_property
    def echo(self) -> Echo:
        """The settings a translated answer's Response repeats (a native one has its own)."""
        return Echo(self.request, self.fields)

    def native_call(self, candidate: Candidate) -> ResponsesCall:
        if self._native is None:
            self._native = forwarded_fields(self.fields, self.history)
            extensions = self.fields.get("extensions")
            self._extensions = _extensions.decode(extensions) if extensions else None
        return ResponsesCall(
            fields=self._native,
            model=candidate.deployment.model,
            stream=self.request.stream,
            # the plan named them by their Responses names: the body's own
            drop=candidate.dropped_params,
            extensions=self._extensions,
        )

    def chat_call(self, provider: Provider, candidate: Candidate) -> ProviderCall:
        deployment = candidate.deployment
        return ProviderCall(
            request=self.chat,
            model=deployment.model,
            request_id=self.request_id,
            # what the adapter leaves out of the chat body, by chat's names
            drop_params=tuple(provider.unsupported_params(self.chat, deployment.capabilities)),
        )

    def kept(self, output: Raw) -> StoredResponse:
        """This response as the gateway keeps it: the conversation through its answer."""
        return StoredResponse(
            id=self.response_id,
            owner=self.caller.name,
            created_at=time.time(),
            items=[*(self.history or ()), *self.input_items(), *_input_items.decode(output)],
        )

    def input_items(self) -> list[Raw]:
        value = self.fields.get("input")
        if value is None or value == Raw(b"null"):
            return []
        if bytes(value)[:1] == b'"':  # a string is one user message
            return [Raw(b'{"role":"user","content":' + bytes(value) + b"}")]
        return _input_items.decode(value)


class ResponsesService:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        governance: Governance,
        store: ResponseStore,
        config: ResponsesConfig,
        limits: LimitsConfig,
    ) -> None:
        self._providers = providers
        self._governance = governance
        self.store = store
        self._config = config
        self._limits = limits

    def is_native(self, candidate: Candidate) -> bool:
        return self._providers[candidate.deployment.provider].responses is not None

    async def answer(
        self,
        router: Router,
        decoded: DecodedBody,
        caller: Caller,
        account: RequestAccount,
        request_id: str,
    ) -> ASGIApp:
        """`router`: the gateway's, read per request as every route reads it."""
        previous = await self._previous(decoded, caller)
        translation = translate(
            decoded.request, decoded.fields, (previous.history if previous else None) or ()
        )
        check_request(translation.request, self._limits)  # the conversation, history included
        plan = self._plan(router, translation, previous, decoded.options)
        await self._governance.admit(
            account, caller, plan, output_tokens=translation.request.output_limit
        )
        turn = _Turn(decoded, translation, previous, caller, request_id)
        if decoded.request.stream:
            return await self._stream(router, turn, plan, account)
        return await self._complete(router, turn, plan, account)

    # --- the previous response, and the plan -----------------------------------------

    async def _previous(self, decoded: DecodedBody, caller: Caller) -> Previous | None:
        previous_id = decoded.request.previous_response_id
        if not isinstance(previous_id, str):
            return None
        kept = await self.store.get(previous_id) if self._config.store else None
        if kept is not None and kept.owner != caller.name:
            kept = None  # another key's response is not this one's to see, nor to know of
        return Previous(id=previous_id, kept=kept)

    def _plan(
        self,
        router: Router,
        translation: ChatTranslation,
        previous: Previous | None,
        options: RouteOptions,
    ) -> Plan:
        try:
            return router.plan(responses_needs(translation, previous), options)
        except NoCandidate as exc:
            if previous is not None and previous.kept is None:
                # OpenAI's own code for it, which clients know
                raise InvalidRequest(
                    f"Previous response with id '{previous.id}' not found. The gateway keeps "
                    f"responses for {self._config.retention:g} s (none with `store: false`); "
                    "send the conversation in `input` instead. " + exc.message,
                    param="previous_response_id",
                    code="previous_response_not_found",
                ) from None
            if translation.native_only is not None:  # what kept every deployment out
                exc.param = translation.native_only.param
            raise

    # --- a whole answer ------------------------------------------------------------

    async def _complete(
        self, router: Router, turn: _Turn, plan: Plan, account: RequestAccount
    ) -> ASGIApp:
        tried: list[Candidate] = []  # tries run one after another: the last one served

        async def call(candidate: Candidate) -> ProviderResponse:
            tried.append(candidate)
            provider = self._providers[candidate.deployment.provider]
            if provider.responses is not None:
                return await provider.responses.complete(turn.native_call(candidate))
            return await provider.complete(turn.chat_call(provider, candidate))

        completed = await router.complete(
            turn.chat, turn.options, turn.request_id, plan=plan, call=call
        )
        metadata = completed.metadata
        account.succeeded(metadata, completed.usage)
        served = tried[-1]
        if self.is_native(served):
            body = completed.response.body
            self._keep_native(turn, _id_of.decode(body).id, served.deployment.provider)
        else:
            response = response_from_chat(
                completed.response.body,
                None if metadata.cost.estimated else completed.usage,
                turn.echo,
                turn.response_id,
                model=served.deployment.model,
                summary=turn.translation.summary,
            )
            body = msgspec.json.encode(response)
            if self._keeps(turn):
                self.store.put(turn.kept(Raw(msgspec.json.encode(response.output))))
        headers = success_headers(metadata, with_cost=True, dropped_params=served.dropped_params)
        headers.update(account.headers)
        return JSONBytes(with_metadata(body, metadata), headers)

    # --- a stream ------------------------------------------------------------------

    async def _stream(
        self, router: Router, turn: _Turn, plan: Plan, account: RequestAccount
    ) -> ASGIApp:
        def open_stream(candidate: Candidate) -> AsyncGenerator[StreamChunk, None]:
            provider = self._providers[candidate.deployment.provider]
            if provider.responses is not None:
                return provider.responses.stream(turn.native_call(candidate))
            return self._translated(turn, provider, candidate)

        stream = await router.stream(
            turn.chat, turn.options, turn.request_id, plan=plan, open_stream=open_stream
        )
        served = stream.candidate
        native = self.is_native(served)

        def on_completed(response: dict[str, Raw]) -> None:
            if native:
                response_id = _str.decode(response.get("id", Raw(b'""')))
                self._keep_native(turn, response_id, served.deployment.provider)
            elif self._keeps(turn):
                self.store.put(turn.kept(response.get("output", Raw(b"[]"))))

        headers = {
            "x-switchboard-provider": served.deployment.provider,
            "x-switchboard-model": served.deployment.model,
            "cache-control": "no-cache",
            "x-accel-buffering": "no",  # nginx in front must not buffer the stream
            **account.headers,
        }
        if served.dropped_params:
            headers["x-switchboard-dropped-params"] = ",".join(served.dropped_params)
        return ASGIStreamingResponse(
            iterator=sse_frames(stream, account, on_completed),
            media_type="text/event-stream",
            headers=headers,
        )

    async def _translated(
        self, turn: _Turn, provider: Provider, candidate: Candidate
    ) -> AsyncGenerator[StreamChunk, None]:
        translator = StreamTranslator(
            turn.echo,
            turn.response_id,
            candidate.deployment.model,
            summary=turn.translation.summary,
            created_at=turn.created_at,
        )
        chunks = provider.stream(turn.chat_call(provider, candidate))
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
        """A marker: the upstream keeps the conversation; the gateway, who may continue
        it and where."""
        if response_id and self._keeps(turn):
            marker = StoredResponse(
                id=response_id, owner=turn.caller.name, created_at=time.time(), provider=provider
            )
            self.store.put(marker)
