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


def request_id_for(headers: Mapping[str, str]) -> str:
    """Keep the caller's `x-request-id` for correlation when it is sane, else make one."""
    given = headers.get("x-request-id")
    if given and _ACCEPTABLE.match(given):
        return given
    return new_request_id()
