"""A client's own Messages API request, sent to a deployment that speaks that API.

The `/v1/messages` ingress hands over the client's top-level fields as their own bytes;
the adapter replaces only the model id (Anthropic) or moves what Bedrock's native
Claude body wants elsewhere, and returns the upstream's answer as its bytes, with the
usage read out for pricing. What the upstream refuses by name (a beta flag, a top-level
field it does not know) is left out and the request sent once more, so a client that
sends newer options than a deployment takes is served, not refused: the names left out
are recorded on the call, for `x-switchboard-dropped-params`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator

import msgspec
from msgspec import Raw

from providers.anthropic.response import openai_usage
from providers.anthropic.wire import AnthropicUsage
from providers.base import ProviderResponse, StreamChunk
from providers.chat_types import Usage
from providers.errors import UpstreamProtocolError

# how many times one try may be re-sent without what the upstream refused
MAX_REFUSALS = 2

# "Unexpected value(s) `a`, `b` for the `anthropic-beta` header. Please consult …"
_UNEXPECTED_BETAS = re.compile(r"Unexpected value\(s\) (.+?) for the `?anthropic-beta`? header")
# "context_management: Extra inputs are not permitted" (a top-level field: no dot)
_EXTRA_FIELD = re.compile(r"^([A-Za-z0-9_]+): Extra inputs are not permitted")


class MessagesCall(msgspec.Struct, kw_only=True):
    """One try of a client's Messages request at one deployment."""

    # the client's top-level fields as sent, less the gateway's own extensions
    fields: dict[str, Raw]
    model: str  # the deployment's model id
    version: str | None = None  # the client's `anthropic-version`
    betas: tuple[str, ...] = ()  # the client's `anthropic-beta` values
    beta_query: bool = False  # the client called `/v1/messages?beta=true`
    request_id: str = ""
    # what the upstream refused and was left out on a later send: `anthropic-beta:NAME`
    # for a beta flag, the field name for a field
    dropped: list[str] = msgspec.field(default_factory=list)

    def without_betas(self, refused: list[str]) -> bool:
        kept = tuple(b for b in self.betas if b not in refused) if refused else ()
        gone = [b for b in self.betas if b not in kept]
        self.betas = kept
        self.dropped.extend(f"anthropic-beta:{b}" for b in gone)
        return bool(gone)

    def without_fields(self, refused: list[str]) -> bool:
        gone = [name for name in refused if name in self.fields and name != "model"]
        if gone:
            # a new dict: the one given is shared by every candidate of the request
            self.fields = {k: v for k, v in self.fields.items() if k not in gone}
            self.dropped.extend(gone)
        return bool(gone)


def drop_refused_by_anthropic(call: MessagesCall, message: str | None) -> bool:
    """Leave out what Anthropic's 400 names as unknown; False if it names nothing we
    can leave out (the refusal then stands)."""
    if not message:
        return False
    betas = _UNEXPECTED_BETAS.search(message)
    if betas is not None and call.betas:
        named = [part.strip(" `'\"") for part in betas.group(1).split(",")]
        # a value we cannot match (wording changed): every beta goes
        return call.without_betas([b for b in named if b in call.betas])
    field = _EXTRA_FIELD.match(message)
    return field is not None and call.without_fields([field.group(1)])


class _MessageView(msgspec.Struct):
    usage: AnthropicUsage | None = None


_message_view = msgspec.json.Decoder(_MessageView)


def message_answer(body: bytes, provider: str) -> ProviderResponse:
    """An upstream's Messages API answer, its bytes untouched and its usage read."""
    try:
        view = _message_view.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise UpstreamProtocolError(
            f"{provider} answered with something that is not a message: {exc}",
            provider=provider,
        ) from exc
    usage: Usage | None = openai_usage(view.usage) if view.usage is not None else None
    return ProviderResponse(body=body, usage=usage)


_count_decoder = msgspec.json.Decoder(dict[str, Raw])


def token_count(body: bytes, field: str, provider: str) -> int:
    """The count in a token-counting answer (`input_tokens`, Bedrock's `inputTokens`)."""
    try:
        count = msgspec.json.decode(_count_decoder.decode(body)[field], type=int)
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError) as exc:
        raise UpstreamProtocolError(
            f"{provider} answered the token count with something else: {exc!r}",
            provider=provider,
        ) from exc
    return count


class MessagesNative(ABC):
    """A provider that takes the Messages API's own request for some of its models."""

    @abstractmethod
    def speaks_messages(self, model: str) -> bool:
        """Whether this model of the provider takes the client's Messages body."""

    @abstractmethod
    async def complete_messages(self, call: MessagesCall) -> ProviderResponse:
        """`body`: the Message JSON as the upstream sent it."""

    @abstractmethod
    def stream_messages(self, call: MessagesCall) -> AsyncGenerator[StreamChunk, None]:
        """Messages stream events (see `relay.MessagesRelay`); closing the iterator
        early closes the upstream request."""

    @abstractmethod
    async def count_message_tokens(self, call: MessagesCall) -> int:
        """The input tokens of the client's `count_tokens` body, as the upstream counts."""
