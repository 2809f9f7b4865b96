"""Which deployments a request allows: the client's routing controls and what the
request cannot do without. Each refusal says which constraint refused, so a request that
nothing can serve gets an error naming why."""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from providers.base import Provider
from providers.capabilities import Needs
from providers.chat_types import ChatRequest
from routing.deployments import Deployment
from routing.options import MaxPrice, RouteOptions, RoutingPreferences
from routing.stats import DeploymentStats


class Constraints(msgspec.Struct, frozen=True, kw_only=True):
    """`routing: {..}` and OpenRouter's `provider: {..}` merged (`routing` wins)."""

    order: tuple[str, ...] = ()
    only: frozenset[str] | None = None
    ignore: frozenset[str] = frozenset()
    allow_fallbacks: bool = True
    max_price: MaxPrice | None = None
    max_latency_ms: float | None = None
    require_parameters: bool = False

    @classmethod
    def of(cls, options: RouteOptions) -> Constraints:
        routing, provider = options.routing, options.provider
        if provider is None and routing == _NO_PREFERENCES:
            return _NONE  # most requests: built once, not per request

        def names(ours: list[str] | None, openrouter: list[str] | None) -> list[str] | None:
            """`routing`'s list wins; OpenRouter's `provider` one applies without it."""
            chosen = ours if ours is not None else openrouter
            return None if chosen is None else [name.lower() for name in chosen]

        only = names(routing.only, provider.only if provider else None)
        return cls(
            order=tuple(names(routing.order, provider.order if provider else None) or ()),
            only=frozenset(only) if only else None,  # `only: []` restricts nothing
            ignore=frozenset(names(routing.ignore, provider.ignore if provider else None) or ()),
            allow_fallbacks=routing.allow_fallbacks
            and (provider.allow_fallbacks if provider else True),
            max_price=routing.max_price or (provider.max_price if provider else None),
            max_latency_ms=routing.max_latency_ms,
            require_parameters=provider.require_parameters if provider else False,
        )


class Fit(msgspec.Struct, frozen=True, kw_only=True):
    """What one deployment's provider makes of a request, beyond the checks routing does
    itself: why it cannot serve the request at all, or which of its parameters it would
    drop (and name to the client)."""

    refused: str | None = None
    dropped: tuple[str, ...] = ()


FITS = Fit()
# Asked once per deployment while planning. Each API has its own: chat asks the
# provider's `unsupported_params`; an embeddings request whether the provider embeds at
# all; a legacy completion whether it speaks that API.
Screen = Callable[[Provider, Deployment], Fit]


class RequestNeeds(msgspec.Struct, frozen=True, kw_only=True):
    """The request's side of every deployment check, worked out once per plan. Whatever
    the API (chat, embeddings, legacy completions, ...), this is all planning reads of a
    request: an ingress for another API builds one rather than a chat body."""

    capabilities: Needs = msgspec.field(default_factory=Needs)
    prompt_tokens: int  # estimated
    output_limit: int = 0  # 0: not set
    screen: Screen | None = None  # None: every deployment takes the request as it is

    @classmethod
    def of(cls, request: ChatRequest) -> RequestNeeds:
        return cls(
            capabilities=Needs.of(request),
            prompt_tokens=request.estimated_prompt_tokens(),
            output_limit=request.output_limit or 0,
            screen=_chat_screen(request),
        )


def _chat_screen(request: ChatRequest) -> Screen:
    def screen(provider: Provider, deployment: Deployment) -> Fit:
        dropped = provider.unsupported_params(request, deployment.capabilities)
        return Fit(dropped=tuple(dropped)) if dropped else FITS

    return screen


_NO_PREFERENCES = RoutingPreferences()
_NONE = Constraints()


def _limit_exceeded(needs: RequestNeeds, deployment: Deployment) -> str | None:
    """The token limit of the deployment's model the request would not fit, if any."""
    capabilities, wanted = deployment.capabilities, needs.output_limit
    if capabilities.max_output_tokens is not None and wanted > capabilities.max_output_tokens:
        return f"max output tokens ({capabilities.max_output_tokens})"
    window = capabilities.context_window
    if window is not None and needs.prompt_tokens + wanted > window:
        return f"context window ({window})"
    return None


def refusal(
    needs: RequestNeeds,
    deployment: Deployment,
    stats: DeploymentStats,
    constraints: Constraints,
) -> str | None:
    """Why the request may not go to this deployment (None: it may)."""
    provider = deployment.provider.lower()
    if constraints.only is not None and provider not in constraints.only:
        return "not in `only`"
    if provider in constraints.ignore:
        return "in `ignore`"
    missing = needs.capabilities.missing_from(deployment.capabilities) or _limit_exceeded(
        needs, deployment
    )
    if missing is not None:
        return f"lacks {missing}"
    ceiling = constraints.max_price
    if ceiling is not None:
        prices = deployment.prices
        if ceiling.prompt is not None and prices.input_per_mtok > ceiling.prompt:
            return f"input price {prices.input_per_mtok:g} over max_price.prompt {ceiling.prompt:g}"
        if ceiling.completion is not None and prices.output_per_mtok > ceiling.completion:
            return (
                f"output price {prices.output_per_mtok:g} over max_price.completion "
                f"{ceiling.completion:g}"
            )
    limit = constraints.max_latency_ms
    if limit is not None and stats.latency_ms is not None and stats.latency_ms > limit:
        return f"observed latency {stats.latency_ms:g} ms over max_latency_ms {limit:g}"
    return None
