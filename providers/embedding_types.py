"""Canonical OpenAI embeddings wire types (`POST /v1/embeddings`).

Clients send an `EmbeddingRequest`; every adapter answers with an `EmbeddingResponse`'s
JSON. `input` is a string, a list of strings, a token array or a list of token arrays:
msgspec decodes it loosely and `EmbeddingRequest.inputs()` says which it is.
"""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, Raw, UnsetType

# OpenAI's documented limit on the number of inputs in one request
MAX_INPUTS = 2048

EncodingFormat = Literal["float", "base64"]


class EmbeddingRequest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An OpenAI embeddings request, as the client sent it. `raw` holds every forwardable
    top-level field as the client's own bytes (see `ChatRequest.raw`)."""

    input: str | list[str | int | list[int]]
    model: str | UnsetType = UNSET
    dimensions: Annotated[int, Meta(ge=1)] | UnsetType = UNSET
    encoding_format: EncodingFormat | UnsetType = UNSET
    user: str | UnsetType = UNSET
    # provider-specific pass-through: {"google": {...}, "bedrock": {...}}
    extensions: dict[str, dict[str, Raw]] | UnsetType = UNSET
    raw: dict[str, Raw] = msgspec.field(default_factory=dict)

    def texts(self) -> list[str] | None:
        """The inputs as strings; None when they are token arrays."""
        if isinstance(self.input, str):
            return [self.input]
        if all(isinstance(item, str) for item in self.input):
            return [item for item in self.input if isinstance(item, str)]
        return None

    def token_arrays(self) -> list[list[int]]:
        """The inputs as token arrays (`texts()` is None)."""
        if all(isinstance(item, int) for item in self.input):
            return [[item for item in self.input if isinstance(item, int)]]
        return [item for item in self.input if isinstance(item, list)]

    @property
    def count(self) -> int:
        return (
            1 if isinstance(self.input, str) or isinstance(self.input[0], int) else len(self.input)
        )

    @property
    def wants_base64(self) -> bool:
        return self.encoding_format == "base64"

    def estimated_prompt_tokens(self) -> int:
        """About four characters a token for text; a token array is counted exactly."""
        texts = self.texts()
        if texts is None:
            return max(1, sum(len(tokens) for tokens in self.token_arrays()))
        return max(1, sum((len(text) + 3) // 4 for text in texts))

    def extension(self, vendor: str) -> dict[str, Raw]:
        extensions = self.extensions
        return extensions.get(vendor, {}) if isinstance(extensions, dict) else {}


class EmbeddingUsage(msgspec.Struct, kw_only=True):
    prompt_tokens: int
    total_tokens: int


class Embedding(msgspec.Struct, kw_only=True):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str  # a base64 string when `encoding_format: base64`


class EmbeddingResponse(msgspec.Struct, kw_only=True):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage | UnsetType = UNSET


def float32_base64(vector: list[float]) -> str:
    """What OpenAI sends for `encoding_format: base64`: the vector as little-endian
    float32, base64-encoded."""
    packed = array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def float32_values(encoded: str) -> list[float]:
    """The inverse of `float32_base64`."""
    packed = array("f")
    packed.frombytes(base64.b64decode(encoded))
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tolist()


def embedding_body(
    vectors: list[list[float]], model: str, request: EmbeddingRequest, prompt_tokens: int | None
) -> bytes:
    """An OpenAI embeddings answer for vectors an upstream returned in its own shape, in
    the encoding the client asked for. `prompt_tokens` None: the upstream did not count
    them (the gateway adds its own estimate to the answer)."""
    encode = float32_base64 if request.wants_base64 else None
    response = EmbeddingResponse(
        data=[
            Embedding(index=i, embedding=encode(vector) if encode else vector)
            for i, vector in enumerate(vectors)
        ],
        model=model,
        usage=UNSET
        if prompt_tokens is None
        else EmbeddingUsage(prompt_tokens=prompt_tokens, total_tokens=prompt_tokens),
    )
    return msgspec.json.encode(response)
