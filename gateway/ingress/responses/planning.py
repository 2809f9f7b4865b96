"""What routing needs to know of a Responses request: the chat request it translates to
(capabilities, prompt size, output limit) and a screen that asks, per deployment, whether
its provider can serve this request and what it would leave out.

The screen refuses a deployment without a Responses API of its own when only such a one
can serve the request (a stored prompt or conversation, a previous response the gateway
did not keep), and every provider but the one that holds a native previous response. It
names what each deployment drops by the Responses API's own names: what the chat path
cannot carry (for a translated deployment) and what the deployment cannot honour.
"""

from __future__ import annotations

import msgspec

from gateway.ingress.responses.native import responses_names
from gateway.ingress.responses.store import StoredResponse
from gateway.ingress.responses.to_chat import ChatTranslation
from providers.base import Provider
from routing.constraints import FITS, Fit, RequestNeeds
from routing.deployments import Deployment


class Previous(msgspec.Struct, frozen=True, kw_only=True):
    """The response a request continues (`previous_response_id`), as the gateway knows it."""

    id: str
    kept: StoredResponse | None  # None: not one the gateway kept (for this key)

    @property
    def holder(self) -> str | None:
        """The provider whose own store holds it (a native response), if any."""
        return self.kept.provider if self.kept is not None else None

    @property
    def history(self) -> list[msgspec.Raw] | None:
        """The conversation so far, when the gateway kept the whole response."""
        kept = self.kept
        return kept.items if kept is not None and kept.provider is None else None


def responses_needs(translation: ChatTranslation, previous: Previous | None) -> RequestNeeds:
    needs = RequestNeeds.of(translation.request)
    chat_screen = needs.screen
    native_only = translation.native_only

    def screen(provider: Provider, deployment: Deployment) -> Fit:
        native = provider.responses is not None
        if previous is not None:
            why = _cannot_continue(previous, provider, native)
            if why is not None:
                return Fit(refused=why)
        if native_only is not None and not native:
            return Fit(
                refused=f"has no Responses API for '{native_only.param}' ({native_only.reason})"
            )
        routed = chat_screen(provider, deployment) if chat_screen is not None else FITS
        dropped = responses_names(routed.dropped)
        if not native:
            dropped = tuple(dict.fromkeys((*translation.dropped, *dropped)))
        return Fit(dropped=dropped) if dropped else FITS

    return msgspec.structs.replace(needs, screen=screen)


def _cannot_continue(previous: Previous, provider: Provider, native: bool) -> str | None:
    holder = previous.holder
    if holder is not None and provider.name != holder:
        return f"does not hold the previous response '{previous.id}' (the provider '{holder}' does)"
    if previous.kept is None and not native:
        return (
            f"cannot continue '{previous.id}': the gateway did not keep it, and the "
            "deployment has no Responses API of its own"
        )
    return None
