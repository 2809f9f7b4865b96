"""What routing needs to know of a legacy completions request, and the per-candidate
operations that serve it: the deployment's provider's legacy completions API."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping

from providers.base import Provider, ProviderResponse, StreamChunk
from providers.completion_types import CompletionRequest
from providers.completions import CompletionsAPI, TextCompletionCall
from routing.constraints import FITS, Fit, RequestNeeds
from routing.deployments import Deployment
from routing.plan import Candidate
from routing.router import CompleteCall, OpenStream


def _dropped(request: CompletionRequest, deployment: Deployment, api: CompletionsAPI) -> list[str]:
    capabilities = deployment.capabilities
    dropped = api.unsupported_params(request, deployment.model)
    if not capabilities.logprobs and "logprobs" in request.raw:
        dropped.append("logprobs")
    if not capabilities.multiple_choices:
        dropped += [
            name
            for name in ("n", "best_of")
            if isinstance(getattr(request, name), int) and getattr(request, name) > 1
        ]
    return dropped


def completion_needs(request: CompletionRequest) -> RequestNeeds:
    """The prompt's estimated tokens and each choice's token limit (OpenAI's default of 16
    when unset). A deployment whose provider speaks no legacy completions is no candidate."""

    def screen(provider: Provider, deployment: Deployment) -> Fit:
        api = provider.legacy_completions
        if api is None:
            return Fit(refused="speaks no legacy completions API")
        dropped = _dropped(request, deployment, api)
        return Fit(dropped=tuple(dropped)) if dropped else FITS

    return RequestNeeds(
        prompt_tokens=request.estimated_prompt_tokens(),
        output_limit=request.output_limit,
        screen=screen,
    )


def output_tokens(request: CompletionRequest) -> int:
    """The most the answer can write: every choice of every prompt at its limit."""
    choices = request.prompt_count * request.choices_per_prompt
    best_of = request.best_of if isinstance(request.best_of, int) else 1
    return choices * max(best_of, 1) * request.output_limit


def _api(providers: Mapping[str, Provider], candidate: Candidate) -> CompletionsAPI:
    api = providers[candidate.deployment.provider].legacy_completions
    assert api is not None  # the screen kept providers without one out of the plan
    return api


def _call(request: CompletionRequest, candidate: Candidate, request_id: str) -> TextCompletionCall:
    return TextCompletionCall(
        request=request,
        model=candidate.deployment.model,
        request_id=request_id,
        drop_params=candidate.dropped_params,
    )


def complete_call(
    providers: Mapping[str, Provider], request: CompletionRequest, request_id: str
) -> CompleteCall:
    async def complete(candidate: Candidate) -> ProviderResponse:
        return await _api(providers, candidate).complete(_call(request, candidate, request_id))

    return complete


def open_stream(
    providers: Mapping[str, Provider], request: CompletionRequest, request_id: str
) -> OpenStream:
    def stream(candidate: Candidate) -> AsyncGenerator[StreamChunk, None]:
        return _api(providers, candidate).stream(_call(request, candidate, request_id))

    return stream
