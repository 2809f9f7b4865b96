"""Embeddings on Gemini: `models/{model}:embedContent` for one input,
`:batchEmbedContents` for several (in batches of at most 100, Gemini's limit, sent
together).

Gemini takes text only (a token array has no meaning without OpenAI's tokenizer), never
reports token counts for embeddings (the gateway estimates them) and always answers in
floats (base64 is encoded here). `dimensions` becomes `outputDimensionality`;
`extensions.google` (e.g. `{"taskType": "RETRIEVAL_QUERY"}`) goes into each request.
(Gemini API reference, "Embeddings": EmbedContentRequest, BatchEmbedContentsRequest.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TypeVar

import msgspec
from msgspec import UNSET, Raw, UnsetType

from providers.base import ProviderResponse
from providers.embedding_types import EmbeddingRequest, embedding_body
from providers.embeddings import EmbeddingCall, EmbeddingsAPI
from providers.errors import UpstreamProtocolError
from providers.gemini.errors import classify_status
from providers.http_client import UpstreamHTTP

BATCH_LIMIT = 100
_encode = msgspec.json.encode
T = TypeVar("T")


class _TextPart(msgspec.Struct):
    text: str


class _Content(msgspec.Struct):
    parts: list[_TextPart]


class GeminiEmbedRequest(msgspec.Struct, kw_only=True, omit_defaults=True, rename="camel"):
    content: _Content
    model: str | UnsetType = UNSET  # required inside a batch
    output_dimensionality: int | UnsetType = UNSET


class GeminiBatchEmbedRequest(msgspec.Struct):
    requests: list[dict[str, Raw]]


class _Values(msgspec.Struct):
    values: list[float]


class GeminiEmbedResponse(msgspec.Struct):
    embedding: _Values


class GeminiBatchEmbedResponse(msgspec.Struct):
    embeddings: list[_Values]


_one_decoder = msgspec.json.Decoder(GeminiEmbedResponse)
_batch_decoder = msgspec.json.Decoder(GeminiBatchEmbedResponse)


def embed_request(text: str, request: EmbeddingRequest, model: str | None) -> dict[str, Raw]:
    """One EmbedContentRequest; `model` (`models/…`) only inside a batch."""
    body = GeminiEmbedRequest(
        content=_Content(parts=[_TextPart(text=text)]),
        model=model if model is not None else UNSET,
        output_dimensionality=request.dimensions,
    )
    fields = msgspec.json.decode(_encode(body), type=dict[str, Raw])
    fields.update(request.extension("google"))
    return fields


class GeminiEmbeddings(EmbeddingsAPI):
    def __init__(
        self,
        provider: str,
        http: UpstreamHTTP,
        headers: Mapping[str, str],
        url_for: Callable[[str, str], str],
        model_path: Callable[[str], str],
    ) -> None:
        self._provider = provider
        self._http = http
        self._headers = headers
        self._url_for = url_for  # (model id, method) → URL
        self._model_path = model_path  # model id → `models/…`

    def refusal(self, request: EmbeddingRequest, model: str) -> str | None:
        if request.texts() is None:
            return "takes text, not token arrays"
        return None

    def unsupported_params(self, request: EmbeddingRequest, model: str) -> list[str]:
        return ["user"] if "user" in request.raw else []

    async def embed(self, call: EmbeddingCall) -> ProviderResponse:
        texts = call.request.texts()
        assert texts is not None  # `refusal` kept token arrays away
        if isinstance(call.request.input, str):
            body = _encode(embed_request(texts[0], call.request, None))
            vectors = [(await self._post(call.model, "embedContent", body, _one_decoder)).embedding]
        else:
            path = self._model_path(call.model)
            batches = [
                _encode(
                    GeminiBatchEmbedRequest(
                        requests=[embed_request(t, call.request, path) for t in chunk]
                    )
                )
                for chunk in (texts[i : i + BATCH_LIMIT] for i in range(0, len(texts), BATCH_LIMIT))
            ]
            answers = await asyncio.gather(
                *(self._post(call.model, "batchEmbedContents", b, _batch_decoder) for b in batches)
            )
            vectors = [vector for answer in answers for vector in answer.embeddings]
        if len(vectors) != len(texts):
            raise UpstreamProtocolError(
                f"{self._provider} returned {len(vectors)} embeddings for {len(texts)} inputs",
                provider=self._provider,
            )
        body = embedding_body([v.values for v in vectors], call.model, call.request, None)
        return ProviderResponse(body=body, usage=None)  # Gemini counts no tokens here

    async def _post(
        self, model: str, method: str, body: bytes, decoder: msgspec.json.Decoder[T]
    ) -> T:
        reply = await self._http.post(self._url_for(model, method), body, self._headers)
        if reply.status != 200:
            raise reply.annotate(
                classify_status(reply.status, reply.headers, reply.body, self._provider)
            )
        try:
            return decoder.decode(reply.body)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamProtocolError(
                f"{self._provider} answered {method} with something unexpected: {exc}",
                provider=self._provider,
                upstream_status=reply.status,
            ) from exc
