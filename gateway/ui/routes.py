"""`/ui`, the status page, and the JSON only it needed besides the gateway's own
(`/v1/providers`, `/v1/usage`, `/v1/generations/{id}`):

- `GET /v1/requests?limit=`: the last requests this process finished, each as
  `GET /v1/generations/{id}` answers it, the newest first;
- `GET /v1/traffic`: requests served per deployment in 5 s slots over six minutes;
- `GET /v1/budgets`: every budget in force with its spend, holds and what it still admits.

All three need the admin key (401 without it, 403 `admin_disabled` when the config sets
none), except on an `auth: none` gateway, where everything is everyone's already.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.params import FromPath
from litestar.response import Redirect

from gateway.errors import JSON
from gateway.governance.errors import StoreDown
from gateway.observability.budgets import BudgetUse
from gateway.observability.generations.views import Generation, generation
from gateway.services import Services
from gateway.ui.recent import RECENT_LIMIT
from providers.errors import InvalidRequest, NotFound
from routing.store.errors import StoreUnavailable

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
_TYPES[".css"] = "text/css; charset=utf-8"
# read once: the page is a handful of small files, served from memory
_FILES: dict[str, tuple[bytes, str]] = {
    entry.name: (entry.read_bytes(), _TYPES[entry.name[entry.name.rfind(".") :]])
    for entry in resources.files("gateway.ui").joinpath("static").iterdir()
    if entry.is_file() and entry.name[entry.name.rfind(".") :] in _TYPES
}
# nothing from another origin, nothing inline: the page runs only its own files
_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}
DEFAULT_REQUESTS = 50


class PageFileNotFound(NotFound):
    code = "unknown_url"


class RequestList(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[Generation]


class Budget(msgspec.Struct, kw_only=True):
    scope: str  # key, team or gateway
    name: str  # "" for the gateway's own
    period: str  # daily or monthly
    limit_usd: float
    spent_usd: float
    reserved_usd: float  # held by requests in flight
    remaining_usd: float  # what it still admits


class BudgetList(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[Budget]


def _file(name: str) -> Response[bytes]:
    found = _FILES.get(name)
    if found is None:
        raise PageFileNotFound(f"The status page has no file '{name[:100]}'.")
    body, media_type = found
    return Response(body, media_type=media_type, headers=_HEADERS)


@get("/")
async def root() -> Redirect:
    """A browser opening the gateway's address lands on the status page."""
    return Redirect(path="/ui", status_code=302)


@get("/ui")
async def status_page() -> Response[bytes]:
    return _file("index.html")


@get("/ui/static/{name:str}")
async def status_page_file(name: FromPath[str]) -> Response[bytes]:
    return _file(name)


def _status_reader(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    if not services.auth.open:
        services.admin.authenticate(request.headers)
    return services


def _limit(params: Mapping[str, str]) -> int:
    text = params.get("limit")
    if text is None:
        return DEFAULT_REQUESTS
    if not text.isdigit() or not 1 <= int(text) <= RECENT_LIMIT:
        raise InvalidRequest(
            f"Invalid value for 'limit': expected a whole number from 1 to {RECENT_LIMIT}.",
            param="limit",
        )
    return int(text)


@get("/v1/requests")
async def recent_requests(request: Request[Any, Any, Any]) -> Response[bytes]:
    services = _status_reader(request)
    records = services.recent.latest(_limit(request.query_params))
    body = RequestList(data=[generation(r) for r in records])
    return Response(msgspec.json.encode(body), media_type=JSON)


@get("/v1/traffic")
async def recent_traffic(request: Request[Any, Any, Any]) -> Response[bytes]:
    services = _status_reader(request)
    return Response(msgspec.json.encode(services.recent.traffic()), media_type=JSON)


def _budget(use: BudgetUse) -> Budget:
    return Budget(
        scope=use.scope,
        name=use.name,
        period=use.period,
        limit_usd=use.limit_usd,
        spent_usd=round(use.spent_usd, 9),
        reserved_usd=round(use.reserved_usd, 9),
        remaining_usd=round(use.remaining_usd, 9),
    )


@get("/v1/budgets")
async def list_budgets(request: Request[Any, Any, Any]) -> Response[bytes]:
    services = _status_reader(request)
    try:
        uses = await services.budget_uses()
    except StoreUnavailable as exc:
        raise StoreDown(f"{exc}; retry later.") from None
    body = BudgetList(data=[_budget(u) for u in uses])
    return Response(msgspec.json.encode(body), media_type=JSON)


ROUTES = [
    root,
    status_page,
    status_page_file,
    recent_requests,
    recent_traffic,
    list_budgets,
]
