"""Simulated embeddings: deterministic vectors of the requested size, in-process.

Each word of an input gets a fixed pseudo-random direction (from a hash of the word), and
the input's vector is the normalised sum of its words' directions: the same input always
gets the same vector, and inputs that share words point in similar directions, so a
retrieval demo on the simulated provider ranks plausibly.
"""

from __future__ import annotations

import hashlib
import math
import re
from array import array
from collections.abc import Awaitable, Callable

from providers.base import ProviderResponse
from providers.embedding_types import EmbeddingRequest, embedding_body
from providers.embeddings import EmbeddingCall, EmbeddingsAPI, prompt_usage

_WORD = re.compile(r"\w+")
_INT16_BYTES = 2


def _direction(word: str, dimensions: int) -> array[int]:
    digest = hashlib.shake_256(word.encode()).digest(dimensions * _INT16_BYTES)
    return array("h", digest)


def vector_for(words: list[str], dimensions: int) -> list[float]:
    """The normalised sum of the words' directions (a unit vector)."""
    total = [0] * dimensions
    for word in dict.fromkeys(words):  # each distinct word once, in order
        total = [a + b for a, b in zip(total, _direction(word, dimensions), strict=True)]
    norm = math.sqrt(sum(v * v for v in total)) or 1.0
    return [v / norm for v in total]


def input_words(request: EmbeddingRequest) -> list[list[str]]:
    """Each input as its words (a token array: each token id is a word)."""
    texts = request.texts()
    if texts is None:
        return [[f"#{token}" for token in tokens] for tokens in request.token_arrays()]
    return [_WORD.findall(text.lower()) or [text] for text in texts]


class SimulatedEmbeddings(EmbeddingsAPI):
    def __init__(
        self,
        dimensions: int,
        before_answer: Callable[[], Awaitable[None]],
    ) -> None:
        self._dimensions = dimensions  # the model's size when the request sets none
        self._before_answer = before_answer  # the provider's latency and failures

    async def embed(self, call: EmbeddingCall) -> ProviderResponse:
        await self._before_answer()
        request = call.request
        size = request.dimensions if isinstance(request.dimensions, int) else self._dimensions
        vectors = [vector_for(words, size) for words in input_words(request)]
        tokens = request.estimated_prompt_tokens()
        body = embedding_body(vectors, call.model, request, tokens)
        return ProviderResponse(body=body, usage=prompt_usage(tokens))
