"""One log line per failed upstream try, at the moment it fails: which provider and host,
the status, and a reason a person can act on. Provider keys never reach it: the HTTP
client cuts them out of any body excerpt, and 401/403 bodies are not kept at all."""

from __future__ import annotations

import json
import logging

from providers import correlation
from providers.errors import ProviderError
from routing.plan import Candidate

log = logging.getLogger("switchboard.upstream")


def log_failed_try(
    candidate: Candidate, error: ProviderError, latency: float, *, opened: bool
) -> None:
    if not log.isEnabledFor(logging.WARNING):
        return
    current = correlation.current()
    reason = error.message if error.detail is None else f"{error.message}: {error.detail}"
    body = error.upstream_body
    log.warning(
        "upstream try failed: provider=%s host=%s model=%s deployment=%s status=%s "
        "error=%s latency_ms=%.1f%s request_id=%s reason=%s%s",
        candidate.deployment.provider,
        error.upstream_host or "-",
        candidate.canonical,
        candidate.deployment.model,
        error.upstream_status if error.upstream_status is not None else "-",
        error.code,
        latency * 1000,
        " circuit=opened" if opened else "",
        current.request_id if current is not None else "-",
        _quoted(reason),
        "" if body is None else f" body={_quoted(body)}",
    )


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # it may hold spaces, quotes and `=`
