"""GET /v1/models and /v1/models/{id}: OpenAI's list shape plus each model's deployments."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.params import FromPath

from gateway.errors import JSON
from gateway.services import Services
from providers.capabilities import Capabilities
from routing.deployments import Deployment
from routing.errors import ModelNotFound


class DeploymentInfo(msgspec.Struct, kw_only=True):
    provider: str
    model: str
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float
    capabilities: Capabilities


class ModelInfo(msgspec.Struct, kw_only=True):
    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = "switchboard"
    description: str = ""
    deployments: list[DeploymentInfo] = []


class ModelList(msgspec.Struct, kw_only=True):
    data: list[ModelInfo]
    object: str = "list"


def _info(name: str, description: str, deployments: list[Deployment]) -> ModelInfo:
    return ModelInfo(
        id=name,
        description=description,
        deployments=[
            DeploymentInfo(
                provider=d.provider,
                model=d.model,
                input_per_mtok=d.prices.input_per_mtok,
                output_per_mtok=d.prices.output_per_mtok,
                cached_input_per_mtok=d.prices.cached_input_per_mtok,
                capabilities=d.capabilities,
            )
            for d in deployments
        ],
    )


@get("/v1/models")
async def list_models(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    services: Services = state.services
    caller = services.auth.authenticate(request.headers)
    listing = ModelList(
        data=[
            _info(name, services.descriptions[name], deployments)
            for name, deployments in services.models.models.items()
            if caller.allows(name)
        ]
    )
    return Response(msgspec.json.encode(listing), media_type=JSON)


@get("/v1/models/{model_id:path}")
async def get_model(
    request: Request[Any, Any, Any], state: State, model_id: FromPath[str]
) -> Response[bytes]:
    services: Services = state.services
    caller = services.auth.authenticate(request.headers)
    name = model_id.lstrip("/")
    deployments = services.models.models.get(name)
    if deployments is None or not caller.allows(name):
        raise ModelNotFound(f"The model '{name}' does not exist.", param="model")
    info = _info(name, services.descriptions[name], deployments)
    return Response(msgspec.json.encode(info), media_type=JSON)
