"""`/v1/admin/prices`: override a deployment's price live, for every replica (the store
holds it; the cost strategy sees it within one snapshot refresh). Guarded by the admin key."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, put
from litestar.datastructures import State
from litestar.params import FromQuery
from msgspec import Meta

from gateway.errors import JSON
from gateway.services import Services
from providers.errors import InvalidRequest, NotFound, SwitchboardError
from routing.stats import PriceOverride, price_key
from routing.store.errors import StoreUnavailable

Price = Annotated[float, Meta(ge=0)]  # USD per million tokens


class PriceChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    model: str  # the canonical model
    provider: str
    input_per_mtok: Price
    output_per_mtok: Price
    cached_input_per_mtok: Price | None = None


class PriceEntry(msgspec.Struct, kw_only=True):
    model: str
    provider: str
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None


class PriceList(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[PriceEntry]


class DeploymentNotFound(NotFound):
    code = "deployment_not_found"


class StoreDown(SwitchboardError):
    status = 503
    type = "api_error"
    code = "store_unavailable"


def _check_deployment(services: Services, model: str, provider: str) -> None:
    deployments = services.models.models.get(model)
    if deployments is None:
        raise DeploymentNotFound(f"The model '{model}' does not exist.", param="model")
    if all(d.provider != provider for d in deployments):
        raise DeploymentNotFound(
            f"The model '{model}' has no deployment on provider '{provider}'.", param="provider"
        )


class PricesNotShared(SwitchboardError):
    status = 409
    type = "invalid_request_error"
    code = "prices_not_shared"


async def _set(services: Services, model: str, provider: str, price: PriceOverride | None) -> None:
    if not services.prices_shared:
        raise PricesNotShared(
            f"This gateway runs {services.workers} worker processes on a memory:// store: "
            "a price set here would reach one of them only. Use a Redis store to change "
            "prices live; nothing was changed."
        )
    try:
        await services.store.set_price(model, provider, price)
    except StoreUnavailable as exc:
        raise StoreDown(f"{exc}; nothing was changed, retry later.") from None


@get("/v1/admin/prices")
async def list_prices(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    services: Services = state.services
    services.admin.authenticate(request.headers)
    prices = services.store.snapshot().prices
    entries = []
    for key, price in sorted(prices.items()):
        model, _, provider = key.partition("|")
        entries.append(
            PriceEntry(
                model=model,
                provider=provider,
                input_per_mtok=price.input_per_mtok,
                output_per_mtok=price.output_per_mtok,
                cached_input_per_mtok=price.cached_input_per_mtok,
            )
        )
    return Response(msgspec.json.encode(PriceList(data=entries)), media_type=JSON)


@put("/v1/admin/prices", status_code=200)
async def set_price(request: Request[Any, Any, Any], state: State) -> Response[bytes]:
    services: Services = state.services
    services.admin.authenticate(request.headers)
    try:
        change = msgspec.json.decode(await request.body(), type=PriceChange)
    except msgspec.ValidationError as exc:  # a DecodeError too: caught first
        raise InvalidRequest(f"Invalid price change: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"Invalid price change: {exc}", code="invalid_json") from None
    _check_deployment(services, change.model, change.provider)
    price = PriceOverride(
        input_per_mtok=change.input_per_mtok,
        output_per_mtok=change.output_per_mtok,
        cached_input_per_mtok=change.cached_input_per_mtok,
    )
    await _set(services, change.model, change.provider, price)
    return Response(msgspec.json.encode(change), media_type=JSON)


@delete("/v1/admin/prices", status_code=200)
async def clear_price(
    request: Request[Any, Any, Any],
    state: State,
    model: FromQuery[str],
    provider: FromQuery[str],
) -> Response[bytes]:
    """Back to the config's price."""
    services: Services = state.services
    services.admin.authenticate(request.headers)
    _check_deployment(services, model, provider)
    existed = price_key(model, provider) in services.store.snapshot().prices
    await _set(services, model, provider, None)
    body = {"model": model, "provider": provider, "cleared": existed}
    return Response(msgspec.json.encode(body), media_type=JSON)
