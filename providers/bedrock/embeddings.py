"""Embeddings on Bedrock through InvokeModel (`/model/{modelId}/invoke`), for the two
families of embedding models it serves:

- Amazon Titan text embeddings (`amazon.titan-embed-text-v2:0`, `…-v1`): one text per
  call (`inputText`), so a list is sent as concurrent calls; `dimensions` (256, 512 or
  1024) on v2 only; the answer counts its tokens (`inputTextTokenCount`).
- Cohere embed (`cohere.embed-english-v3`, `cohere.embed-multilingual-v3`,
  `cohere.embed-v4:0`): up to 96 `texts` a call; `input_type` is required, and
  `search_document` is sent unless `extensions.bedrock.input_type` says otherwise;
  `dimensions` becomes v4's `output_dimension` (v3 has none); tokens are counted in the
  `X-Amzn-Bedrock-Input-Token-Count` header.

Both take text only and answer in floats (base64 is encoded here). `extensions.bedrock`
is merged into every body. (Bedrock user guide, "Amazon Titan Embeddings Text" and
"Cohere Embed models"; API reference, InvokeModel.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TypeVar

import msgspec
from msgspec import UNSET, Raw, UnsetType

from providers.base import ProviderResponse
from providers.bedrock.errors import classify_http_error
from providers.bedrock.signing import BedrockSigner, model_path
from providers.embedding_types import EmbeddingRequest, embedding_body
from providers.embeddings import EmbeddingCall, EmbeddingsAPI, prompt_usage
from providers.errors import UpstreamProtocolError
from providers.http_client import UpstreamHTTP

COHERE_BATCH = 96  # texts per call
TITAN_CONCURRENCY = 8  # calls in flight for one request's list of texts
_TOKEN_HEADER = "x-amzn-bedrock-input-token-count"
_encode = msgspec.json.encode
T = TypeVar("T")


class TitanEmbedRequest(msgspec.Struct, rename="camel", omit_defaults=True):
    input_text: str
    dimensions: int | UnsetType = UNSET


class TitanEmbedResponse(msgspec.Struct, rename="camel"):
    embedding: list[float]
    input_text_token_count: int | None = None


class CohereEmbedRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    texts: list[str]
    input_type: str  # required by v3 and v4
    output_dimension: int | UnsetType = UNSET


class _CohereByType(msgspec.Struct):
    floats: list[list[float]] = msgspec.field(name="float")


class CohereEmbedResponse(msgspec.Struct):
    # a list of vectors; `{"float": [...]}` when `embedding_types` was sent
    embeddings: list[list[float]] | _CohereByType


_titan_decoder = msgspec.json.Decoder(TitanEmbedResponse)
_cohere_decoder = msgspec.json.Decoder(CohereEmbedResponse)


def family(model: str) -> str | None:
    """`titan`, `cohere`, or None for a model id that is neither (ARNs and inference
    profiles such as `us.cohere.embed-v4:0` included)."""
    if "titan-embed" in model:
        return "titan"
    if "cohere.embed" in model:
        return "cohere"
    return None


def takes_dimensions(model: str) -> bool:
    if family(model) == "titan":
        return "titan-embed-text-v1" not in model and "titan-embed-g1" not in model
    return "embed-v4" in model  # Cohere v3 has a fixed size


def _with_extension(body: msgspec.Struct, request: EmbeddingRequest) -> bytes:
    extra = request.extension("bedrock")
    if not extra:
        return _encode(body)
    fields = msgspec.json.decode(_encode(body), type=dict[str, Raw])
    fields.update(extra)
    return _encode(fields)


def titan_body(text: str, request: EmbeddingRequest) -> bytes:
    return _with_extension(
        TitanEmbedRequest(input_text=text, dimensions=request.dimensions), request
    )


def cohere_body(texts: list[str], request: EmbeddingRequest) -> bytes:
    body = CohereEmbedRequest(
        texts=texts, input_type="search_document", output_dimension=request.dimensions
    )
    return _with_extension(body, request)


class BedrockEmbeddings(EmbeddingsAPI):
    def __init__(
        self,
        provider: str,
        http: UpstreamHTTP,
        signer: BedrockSigner,
        endpoint: str,
        headers: Mapping[str, str],
    ) -> None:
        self._provider = provider
        self._http = http
        self._signer = signer
        self._endpoint = endpoint
        self._headers = {
            **headers,
            "content-type": "application/json",
            "accept": "application/json",
        }

    def refusal(self, request: EmbeddingRequest, model: str) -> str | None:
        if family(model) is None:
            return "is not a Titan or Cohere embedding model"
        if request.texts() is None:
            return "takes text, not token arrays"
        if isinstance(request.dimensions, int) and not takes_dimensions(model):
            return "cannot honour dimensions"
        return None

    def unsupported_params(self, request: EmbeddingRequest, model: str) -> list[str]:
        return ["user"] if "user" in request.raw else []

    async def embed(self, call: EmbeddingCall) -> ProviderResponse:
        texts = call.request.texts()
        assert texts is not None  # `refusal` kept token arrays away
        if family(call.model) == "titan":
            vectors, tokens = await self._titan(texts, call)
        else:
            vectors, tokens = await self._cohere(texts, call)
        if len(vectors) != len(texts):
            raise UpstreamProtocolError(
                f"{self._provider} returned {len(vectors)} embeddings for {len(texts)} inputs",
                provider=self._provider,
            )
        body = embedding_body(vectors, call.model, call.request, tokens)
        return ProviderResponse(body=body, usage=None if tokens is None else prompt_usage(tokens))

    async def _titan(
        self, texts: list[str], call: EmbeddingCall
    ) -> tuple[list[list[float]], int | None]:
        slots = asyncio.Semaphore(TITAN_CONCURRENCY)

        async def one(text: str) -> tuple[TitanEmbedResponse, Mapping[str, str]]:
            async with slots:
                return await self._invoke(
                    call.model, titan_body(text, call.request), _titan_decoder
                )

        answers = await asyncio.gather(*(one(text) for text in texts))
        counts = [answer.input_text_token_count for answer, _ in answers]
        tokens = None if None in counts else sum(c for c in counts if c is not None)
        return [answer.embedding for answer, _ in answers], tokens

    async def _cohere(
        self, texts: list[str], call: EmbeddingCall
    ) -> tuple[list[list[float]], int | None]:
        chunks = [texts[i : i + COHERE_BATCH] for i in range(0, len(texts), COHERE_BATCH)]
        answers = await asyncio.gather(
            *(
                self._invoke(call.model, cohere_body(c, call.request), _cohere_decoder)
                for c in chunks
            )
        )
        vectors: list[list[float]] = []
        counts: list[int | None] = []
        for answer, headers in answers:
            embeddings = answer.embeddings
            vectors += embeddings.floats if isinstance(embeddings, _CohereByType) else embeddings
            counts.append(_header_count(headers))
        tokens = None if None in counts else sum(c for c in counts if c is not None)
        return vectors, tokens

    async def _invoke(
        self, model: str, body: bytes, decoder: msgspec.json.Decoder[T]
    ) -> tuple[T, Mapping[str, str]]:
        url = self._endpoint + model_path(model, "invoke")
        headers = await self._signer.sign(url, body, self._headers)
        reply = await self._http.post(url, body, headers)
        if reply.status != 200:
            raise reply.annotate(
                classify_http_error(reply.status, reply.headers, reply.body, self._provider)
            )
        try:
            return decoder.decode(reply.body), reply.headers
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UpstreamProtocolError(
                f"{self._provider} answered InvokeModel with something that is not an "
                f"embedding: {exc}",
                provider=self._provider,
                upstream_status=reply.status,
            ) from exc


def _header_count(headers: Mapping[str, str]) -> int | None:
    value = headers.get(_TOKEN_HEADER)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
