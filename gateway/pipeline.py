"""The steps every API endpoint takes, in this order (chat completions is the model):

1. `begin()`: open the request's account, authenticate from the key snapshot (no I/O);
2. `read_json()`: refuse what is not `application/json`, read the body within the size
   limit, refuse nesting deeper than `limits.max_json_depth`;
3. decode and validate the endpoint's own body, check the models against the key;
4. `Router.plan()`, then `services.governance.admit(account, caller, plan, ...)`: rate
   limits and the budget reservation, one store round trip at most;
5. `Router.complete/stream(..., plan=plan)`;
6. `account.succeeded(...)` (a stream: `account.stream_ended(...)` as it ends), and
   answer with `account.headers` added. An error raised anywhere closes the account in
   the error handler, which adds the same headers.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from gateway.accounting import RequestAccount
from gateway.auth import Caller
from gateway.governance.input_limits import check_content_type, check_depth
from gateway.services import Services


def begin(
    request: Request[Any, Any, Any], endpoint: str
) -> tuple[Services, RequestAccount, Caller]:
    # read from the app rather than injected: a `state` parameter costs a State copy and
    # a signature-model pass on every request
    services: Services = request.app.state.services
    account = services.accounts.open(request.scope, endpoint)
    caller = services.auth.authenticate(request.headers)
    account.key = None if services.auth.open else caller.name
    account.team = caller.team
    return services, account, caller


async def read_json(request: Request[Any, Any, Any], services: Services) -> bytes:
    check_content_type(request.headers)
    body = await request.body()
    check_depth(body, services.config.limits.max_json_depth)
    return body
