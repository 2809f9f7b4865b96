"""What routing needs to know of an embeddings request, and the per-candidate operation
that serves it: the deployment's provider's embeddings API."""

from __future__ import annotations

from collections.abc import Mapping

from providers.base import Provider, ProviderResponse
from providers.embedding_types import EmbeddingRequest
from providers.embeddings import EmbeddingCall
from routing.constraints import FITS, Fit, RequestNeeds
from routing.deployments import Deployment
from routing.plan import Candidate
from routing.router import CompleteCall


def embedding_needs(request: EmbeddingRequest) -> RequestNeeds:
    """The whole input's estimated tokens (what it costs); no output. A deployment whose
    provider cannot embed, or not this input, is no candidate, with its reason."""

    def screen(provider: Provider, deployment: Deployment) -> Fit:
        api = provider.embeddings
        if api is None:
            return Fit(refused="has no embeddings API")
        why = api.refusal(request, deployment.model)
        if why is not None:
            return Fit(refused=why)
        dropped = api.unsupported_params(request, deployment.model)
        return Fit(dropped=tuple(dropped)) if dropped else FITS

    return RequestNeeds(prompt_tokens=request.estimated_prompt_tokens(), screen=screen)


def embed_call(
    providers: Mapping[str, Provider], request: EmbeddingRequest, request_id: str
) -> CompleteCall:
    async def embed(candidate: Candidate) -> ProviderResponse:
        api = providers[candidate.deployment.provider].embeddings
        assert api is not None  # the screen kept providers without one out of the plan
        return await api.embed(
            EmbeddingCall(
                request=request,
                model=candidate.deployment.model,
                request_id=request_id,
                drop_params=candidate.dropped_params,
            )
        )

    return embed
