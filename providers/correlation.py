"""What ties one client request to everything it causes: the ids its upstream calls carry
(so a provider's support can find the call) and the ones its log lines name.

The gateway sets it when a request arrives; it lives in a context variable, so it follows
the request through routing into every adapter's HTTP call without being passed along,
the way W3C trace context travels in OpenTelemetry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextvars import ContextVar, Token

import msgspec

# W3C Trace Context: version-traceid-parentid-flags; later versions may append fields
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?$")
_TRACESTATE = re.compile(r"^[\x20-\x7e]{1,512}$")


class Correlation(msgspec.Struct, frozen=True, kw_only=True):
    request_id: str
    traceparent: str | None = None  # the caller's, or our span's when tracing is on
    tracestate: str | None = None


_current: ContextVar[Correlation | None] = ContextVar("switchboard_correlation", default=None)


def current() -> Correlation | None:
    return _current.get()


def set_current(correlation: Correlation) -> Token[Correlation | None]:
    return _current.set(correlation)


def reset(token: Token[Correlation | None]) -> None:
    _current.reset(token)


def valid_traceparent(value: str | None) -> str | None:
    """A `traceparent` as W3C defines it, else None (an invalid one is dropped, as the
    spec asks of a receiver)."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip())  # lower-case hex only, as W3C requires
    if match is None:
        return None
    version, trace_id, parent_id, _ = match.groups()
    if version == "ff" or (version == "00" and match.group(4)):
        return None
    if trace_id == "0" * 32 or parent_id == "0" * 16:
        return None
    return match.group(0)


def valid_tracestate(value: str | None) -> str | None:
    return value if value and _TRACESTATE.match(value) else None


def upstream_headers(names: tuple[str, ...]) -> Mapping[str, str]:
    """The current request's correlation as headers for an upstream call: its id under
    each of `names` (the ones that upstream's API reads), and its trace context."""
    correlation = _current.get()
    if correlation is None:
        return {}
    headers = dict.fromkeys(names, correlation.request_id)
    if correlation.traceparent is not None:
        headers["traceparent"] = correlation.traceparent
        if correlation.tracestate is not None:
            headers["tracestate"] = correlation.tracestate
    return headers
