from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping

_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# a random per-process prefix and a counter: unique across replicas, and without the
# urandom() system call per request that uuid4() costs on the hot path
_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count(1)


def new_request_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):012x}"


def acceptable_request_id(given: str | None) -> str | None:
    """The caller's id, kept for correlation only when it is short and plain."""
    return given if given and _ACCEPTABLE.match(given) else None


def request_id_for(headers: Mapping[str, str]) -> str:
    return acceptable_request_id(headers.get("x-request-id")) or new_request_id()
