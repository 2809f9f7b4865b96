"""Embeddings on an OpenAI-wire upstream (OpenAI, compatible vendors, Azure): the client's
body forwarded as sent, the answer passed through.

The only translation: a compatible server that ignores `encoding_format: base64` (the
openai SDK asks for it by default) answers with floats, which are then encoded here, so
the client gets what it asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import msgspec
from msgspec import Raw

from providers.base import ProviderResponse
from providers.embedding_types import embedding_body
from providers.embeddings import EmbeddingCall, EmbeddingsAPI
from providers.errors import UpstreamProtocolError
from providers.http_client import UpstreamHTTP
from providers.openai.errors import classify_status
from providers.openai.wire import UsageView

_encode = msgspec.json.encode


class _VectorView(msgspec.Struct):
    embedding: Raw


class _AnswerView(msgspec.Struct):
    data: list[_VectorView]
    usage: UsageView | None = None


class _FloatVector(msgspec.Struct):
    embedding: list[float]
    index: int = 0


class _FloatAnswer(msgspec.Struct):
    data: list[_FloatVector]
    model: str = ""


_answer_decoder = msgspec.json.Decoder(_AnswerView)


def _floats(vector: Raw) -> bool:
    return memoryview(vector)[:1].tobytes() == b"["


_float_decoder = msgspec.json.Decoder(_FloatAnswer)


class OpenAIEmbeddings(EmbeddingsAPI):
    def __init__(
        self,
        provider: str,
        http: UpstreamHTTP,
        headers: Mapping[str, str],
        url_for: Callable[[str], str],
        extension: str,
    ) -> None:
        self._provider = provider
        self._http = http
        self._headers = headers
        self._url_for = url_for  # the deployment's model id → its embeddings URL
        self._extension = extension  # the key of `extensions` merged into the body

    def body_for(self, call: EmbeddingCall) -> bytes:
        request = call.request
        fields = {k: v for k, v in request.raw.items() if k not in call.drop_params}
        fields["model"] = Raw(_encode(call.model))
        fields.update(request.extension(self._extension))
        return _encode(fields)

    async def embed(self, call: EmbeddingCall) -> ProviderResponse:
        reply = await self._http.post(self._url_for(call.model), self.body_for(call), self._headers)
        if reply.status != 200:
            raise reply.annotate(
                classify_status(reply.status, reply.headers, reply.body, self._provider)
            )
        try:
            answer = _answer_decoder.decode(reply.body)
            body = reply.body.strip()
            if call.request.wants_base64 and any(_floats(v.embedding) for v in answer.data):
                body = self._as_base64(body, call)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamProtocolError(
                f"{self._provider} answered with something that is not an embeddings list: {exc}",
                provider=self._provider,
                upstream_status=reply.status,
            ) from exc
        usage = answer.usage.usage() if answer.usage is not None else None
        if usage is not None and not usage.prompt_tokens:
            usage = None  # a server that counts nothing: the gateway estimates
        return ProviderResponse(body=body, usage=usage)

    def _as_base64(self, body: bytes, call: EmbeddingCall) -> bytes:
        answer = _float_decoder.decode(body)
        vectors = [v.embedding for v in sorted(answer.data, key=lambda v: v.index)]
        usage = _answer_decoder.decode(body).usage
        prompt = usage.prompt_tokens if usage is not None else None
        return embedding_body(vectors, answer.model or call.model, call.request, prompt)
