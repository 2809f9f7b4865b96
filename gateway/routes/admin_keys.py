"""`/v1/admin/keys`: gateway keys kept in the store, guarded by the admin key.

POST mints a key and returns its plain text once; GET lists every key (the config's and
the store's) without secrets; PATCH changes a stored key's limits, models, team, expiry
or `disabled`; DELETE revokes it. Every replica sees a change within one key refresh
(`governance.refresh`); the replica that made it, at once.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, delete, get, patch, post
from litestar.params import FromPath

from gateway.errors import JSON
from gateway.governance.input_limits import check_content_type
from gateway.governance.key_admin import KeyList, decode_body
from gateway.governance.keys import KeyChange, NewKey
from gateway.services import Services


def _json(body: Any, status: int = 200) -> Response[bytes]:
    return Response(msgspec.json.encode(body), media_type=JSON, status_code=status)


def _admin(request: Request[Any, Any, Any]) -> Services:
    services: Services = request.app.state.services
    services.admin.authenticate(request.headers)
    return services


@post("/v1/admin/keys", status_code=201)
async def create_key(request: Request[Any, Any, Any]) -> Response[bytes]:
    services = _admin(request)
    check_content_type(request.headers)
    new: NewKey = decode_body(await request.body(), NewKey)
    return _json(await services.key_admin.create(new), 201)


@get("/v1/admin/keys")
async def list_keys(request: Request[Any, Any, Any]) -> Response[bytes]:
    services = _admin(request)
    return _json(KeyList(data=await services.key_admin.describe()))


@patch("/v1/admin/keys/{name:str}")
async def update_key(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    services = _admin(request)
    check_content_type(request.headers)
    change: KeyChange = decode_body(await request.body(), KeyChange)
    return _json(await services.key_admin.update(name, change))


@delete("/v1/admin/keys/{name:str}", status_code=200)
async def revoke_key(request: Request[Any, Any, Any], name: FromPath[str]) -> Response[bytes]:
    services = _admin(request)
    await services.key_admin.revoke(name)
    return _json({"name": name, "revoked": True})
