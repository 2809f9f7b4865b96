from __future__ import annotations

import re
import uuid
from collections.abc import Mapping

_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_for(headers: Mapping[str, str]) -> str:
    """Keep the caller's `x-request-id` for correlation when it is sane, else make one."""
    given = headers.get("x-request-id")
    if given and _ACCEPTABLE.match(given):
        return given
    return uuid.uuid4().hex
