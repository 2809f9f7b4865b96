"""Bounds on a request, checked before anything else reads it: a clear 4xx, never a 500.

The content type comes first: a browser may POST `text/plain` (or a typeless Blob) to
any origin without asking, so a gateway that parsed such a body as JSON would let any web
page spend through a visitor's reachable gateway. Only `application/json` is read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from gateway.governance.config import LimitsConfig
from gateway.governance.errors import OutputCapExceeded, UnsupportedMediaType
from providers.chat_types import ChatRequest
from providers.errors import InvalidRequest
from routing.deployments import Deployment

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_ONE_KIND = bytes.maketrans(b"{}", b"[]")  # depth is all that matters, not which bracket


def check_content_type(headers: Mapping[str, str]) -> None:
    value = headers.get("content-type")
    media_type = value.partition(";")[0].strip().lower() if value else ""
    if media_type != "application/json":
        shown = f"'{media_type[:64]}'" if media_type else "none"
        raise UnsupportedMediaType(
            f"The request body must be sent as 'Content-Type: application/json' (got {shown}).",
        )


def check_depth(body: bytes, limit: int) -> None:
    """Arrays and objects nested deeper than `limit` are refused. Counting brackets is
    enough for nearly every body; only a body with more brackets than the limit has its
    strings taken out and matched pairs peeled off, one level per pass (all in C)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return
    shape = _STRING.sub(b"", body).translate(_ONE_KIND, _NOT_BRACKETS)
    if b"[" * (limit + 1) not in shape:  # else: too deep, found in one scan
        for _ in range(limit):
            peeled = shape.replace(b"[]", b"")
            if peeled == shape or not peeled:  # done (or not JSON: the decoder says so)
                return
            shape = peeled
    raise InvalidRequest(
        f"The request body is nested more than {limit} levels deep.", code="json_too_deep"
    )


def check_request(request: ChatRequest, limits: LimitsConfig) -> None:
    if len(request.messages) > limits.max_messages:
        raise InvalidRequest(
            f"The request has {len(request.messages)} messages; at most "
            f"{limits.max_messages} are accepted.",
            param="messages",
            code="too_many_messages",
        )
    if isinstance(request.n, int) and request.n > limits.max_n:
        raise InvalidRequest(
            f"Invalid value for 'n': at most {limits.max_n} choices per request.", param="n"
        )


def check_output_cap(
    requested: int | None, model: str, deployments: list[Deployment], param: str = "max_tokens"
) -> None:
    """A `max_tokens` above what every deployment of the model can write is the client's
    mistake, not a routing failure. `param`: the limit's name in the endpoint's API."""
    if requested is None or not deployments:
        return
    caps = [d.capabilities.max_output_tokens for d in deployments]
    if any(cap is None for cap in caps):
        return
    hard_cap = max(cap for cap in caps if cap is not None)
    if requested > hard_cap:
        raise OutputCapExceeded(
            f"{param} is {requested}, but '{model}' writes at most {hard_cap} tokens.",
            param=param,
        )
