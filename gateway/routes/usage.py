"""GET /v1/usage: spend from the ledger. The admin key sees every key's; a client key
sees only its own (under `auth: none`, everyone sees everything)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get

from gateway.errors import JSON
from gateway.governance.errors import StoreDown
from gateway.governance.ledger import UsageRow, report_days, usage
from gateway.services import Services
from routing.store.errors import StoreUnavailable


class UsageReport(msgspec.Struct, kw_only=True):
    object: str = "usage"
    from_: str = msgspec.field(name="from")
    to: str
    group_by: list[str]
    data: list[UsageRow]
    total: UsageRow


@get("/v1/usage")
async def get_usage(request: Request[Any, Any, Any]) -> Response[bytes]:
    services: Services = request.app.state.services
    only_key: str | None = None
    if not services.admin.is_admin(request.headers):
        caller = services.auth.authenticate(request.headers)
        only_key = None if services.auth.open else caller.name
    params = request.query_params
    start, end, group_by, days = report_days(
        params.get("from"), params.get("to"), params.get("group_by")
    )
    try:
        ledger = await services.governance.store.ledger(days)
    except StoreUnavailable as exc:
        raise StoreDown(f"{exc}; retry later.") from None
    rows, total = usage(ledger, group_by, only_key=only_key)
    report = UsageReport(from_=start, to=end, group_by=list(group_by), data=rows, total=total)
    return Response(msgspec.json.encode(report), media_type=JSON)
