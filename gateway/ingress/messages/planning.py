"""What routing needs to know of a Messages request.

Its capabilities (tools, images, a JSON schema), prompt size and output limit are its
chat translation's, so constraints, capabilities and prices apply as on chat. Per
deployment, the screen says what it will not honour: nothing for one that takes the
Messages body itself (it gets the client's fields as sent), the chat parameters its
provider drops for one that gets the translation.

`max_tokens` is a ceiling in the Messages API, and clients send one for any model
(Claude Code: 32000): a translated deployment whose model writes fewer tokens at most
(its `max_output_tokens`) is sent its own maximum, which its answer could not pass
anyway, rather than be refused. Routing plans with the smallest such maximum among the
request's deployments, so none is passed over for it.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from msgspec import Raw

from gateway.ingress.messages.to_chat import Translation
from providers.anthropic.native import MessagesNative
from providers.base import Provider
from providers.capabilities import Needs
from providers.chat_types import ChatRequest
from routing.constraints import FITS, Fit, RequestNeeds
from routing.deployments import Deployment


def speaks_messages(provider: Provider, model: str) -> MessagesNative | None:
    """The provider, as one that takes the Messages body for this model, if it does."""
    if isinstance(provider, MessagesNative) and provider.speaks_messages(model):
        return provider
    return None


def with_output_limit(chat: ChatRequest, limit: int | None) -> ChatRequest:
    """`chat` with its `max_tokens` at most `limit`."""
    wanted = chat.max_tokens
    if limit is None or not isinstance(wanted, int) or wanted <= limit:
        return chat
    raw = {**chat.raw, "max_tokens": Raw(str(limit).encode())}
    return msgspec.structs.replace(chat, max_tokens=limit, raw=raw)


def output_limit(chat: ChatRequest, deployments: Iterable[Deployment]) -> int:
    """The request's output limit within every deployment's maximum (0: not set)."""
    wanted = chat.output_limit or 0
    known = [d.capabilities.max_output_tokens for d in deployments]
    limits = [limit for limit in known if limit is not None]
    return min(wanted, *limits) if wanted and limits else wanted


def messages_needs(translation: Translation, deployments: Iterable[Deployment]) -> RequestNeeds:
    chat = translation.chat

    def screen(provider: Provider, deployment: Deployment) -> Fit:
        if speaks_messages(provider, deployment.model) is not None:
            return FITS
        sent = with_output_limit(chat, deployment.capabilities.max_output_tokens)
        dropped = provider.unsupported_params(sent, deployment.capabilities)
        return Fit(dropped=tuple(dropped)) if dropped else FITS

    return RequestNeeds(
        capabilities=Needs.of(chat),
        prompt_tokens=chat.estimated_prompt_tokens(),
        output_limit=output_limit(chat, deployments),
        screen=screen,
    )
