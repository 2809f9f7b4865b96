"""GET /v1/models and /v1/models/{id}: OpenAI's list shape plus each model's deployments
with the prices in force and their live statistics, and OpenRouter's `pricing` and
`context_length` for clients written against OpenRouter."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath

from gateway.errors import JSON
from gateway.scoreboard import DeploymentStatus, Health, deployment_status
from gateway.services import Services
from providers.capabilities import Capabilities
from routing.errors import ModelNotFound
from routing.stats import DeploymentStats


class DeploymentInfo(msgspec.Struct, kw_only=True):
    provider: str
    model: str  # the provider's id for it
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float
    price_source: Literal["config", "store"]
    capabilities: Capabilities
    health: Health
    stats: DeploymentStats


class Pricing(msgspec.Struct, kw_only=True):
    """OpenRouter's `pricing`: USD per token, as decimal strings ("0.00000059")."""

    prompt: str
    completion: str


class ModelInfo(msgspec.Struct, kw_only=True):
    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = "switchboard"
    description: str = ""
    # OpenRouter's fields: the cheapest deployment's prices, the largest known context
    pricing: Pricing | None = None
    context_length: int | None = None
    deployments: list[DeploymentInfo] = []


class ModelList(msgspec.Struct, kw_only=True):
    data: list[ModelInfo]
    object: str = "list"


def _deployment(status: DeploymentStatus) -> DeploymentInfo:
    return DeploymentInfo(
        provider=status.provider,
        model=status.provider_model_id,
        input_per_mtok=status.input_per_mtok,
        output_per_mtok=status.output_per_mtok,
        cached_input_per_mtok=status.cached_input_per_mtok,
        price_source=status.price_source,
        capabilities=status.capabilities,
        health=status.health,
        stats=status.stats,
    )


def per_token(per_mtok: float) -> str:
    """A price per million tokens as USD per token, written as OpenRouter writes it: a
    plain decimal, never an exponent ("0.00000059", "0")."""
    return format(Decimal(repr(per_mtok)).scaleb(-6).normalize(), "f")


def _pricing(deployments: list[DeploymentInfo]) -> Pricing | None:
    """The prices of the deployment that is cheapest for input and output together."""
    if not deployments:
        return None
    cheapest = min(deployments, key=lambda d: d.input_per_mtok + d.output_per_mtok)
    return Pricing(
        prompt=per_token(cheapest.input_per_mtok),
        completion=per_token(cheapest.output_per_mtok),
    )


def _info(services: Services, name: str) -> ModelInfo:
    health = services.router.health
    snapshot, now = services.store.snapshot(), services.store.clock()
    deployments = [
        _deployment(deployment_status(name, d, snapshot, health, now))
        for d in services.models.models[name]
    ]
    windows = [w for d in deployments if (w := d.capabilities.context_window) is not None]
    return ModelInfo(
        id=name,
        description=services.descriptions[name],
        pricing=_pricing(deployments),
        context_length=max(windows) if windows else None,
        deployments=deployments,
    )


@get("/v1/models")
async def list_models(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    services: Services = state.services
    caller = services.auth.authenticate(request.headers)
    listing = ModelList(
        data=[_info(services, name) for name in services.models.models if caller.allows(name)]
    )
    return Response(msgspec.json.encode(listing), media_type=JSON)


@get("/v1/models/{model_id:path}")
async def get_model(
    request: Request[Any, Any, Any], state: State, model_id: FromPath[str]
) -> Response[bytes]:
    services: Services = state.services
    caller = services.auth.authenticate(request.headers)
    name = model_id.lstrip("/")
    if name not in services.models.models or not caller.allows(name):
        raise ModelNotFound(f"The model '{name}' does not exist.", param="model")
    return Response(msgspec.json.encode(_info(services, name)), media_type=JSON)
