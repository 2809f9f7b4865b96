"""The gateway's own view, when it has one: `GET /v1/providers` polled once a second.

Optional and forgiving. A gateway without the endpoint, or with a shape we do not
recognise, just gives no notes; the live view shows what it finds, per provider.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import msgspec

POLL_INTERVAL_S = 1.0
_GONE = frozenset({404, 405, 501})  # the endpoint is not there: stop asking


def _entries(payload: Any) -> list[tuple[str | None, dict[str, Any]]]:
    """(key, entry) pairs for a list of entries, or an object of them keyed by name, found
    at the top level or under `data`, `providers` or `deployments`."""
    if isinstance(payload, dict):
        for key in ("data", "providers", "deployments"):
            if key in payload:
                return _entries(payload[key])
        return [(k, v) for k, v in payload.items() if isinstance(v, dict)]
    if isinstance(payload, list):
        return [(None, item) for item in payload if isinstance(item, dict)]
    return []


def _number(fields: dict[str, Any], *names: str) -> float | None:
    for name in names:
        value = fields.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _note(fields: dict[str, Any]) -> str:
    parts: list[str] = []
    for name in ("health", "circuit", "state", "status"):
        if isinstance(fields.get(name), str):
            parts.append(fields[name])
            break
    error_rate = _number(fields, "error_rate")
    if error_rate is not None:
        parts.append(f"err {error_rate:.0%}" if error_rate <= 1 else f"err {error_rate:.0f}%")
    latency = _number(fields, "latency_p95_ms", "latency_ms", "ttft_ms")
    if latency is not None:
        parts.append(f"{latency:.0f} ms")
    return " ".join(parts)


def scoreboard_notes(payload: Any) -> dict[str, str]:
    """A short note per provider from a decoded `/v1/providers` answer of any shape."""
    notes: dict[str, list[str]] = {}
    for key, entry in _entries(payload):
        name = entry.get("provider") or entry.get("name") or key
        if not isinstance(name, str):
            continue
        stats = entry.get("stats")
        fields = {**entry, **stats} if isinstance(stats, dict) else entry
        note = _note(fields)
        if note:
            # "sim-fast/llama-3.3-70b-fast", a deployment id, is listed under its provider
            notes.setdefault(name.split("/")[0], []).append(note)
    return {name: "; ".join(parts) for name, parts in notes.items()}


async def poll_scoreboard(client: httpx.AsyncClient, notes: dict[str, str]) -> None:
    """Keep `notes` up to date until cancelled or the endpoint turns out not to exist."""
    while True:
        try:
            response = await client.get("/v1/providers")
            if response.status_code in _GONE:
                return
            if response.status_code == 200:
                fresh = scoreboard_notes(msgspec.json.decode(response.content))
                notes.clear()
                notes.update(fresh)
        except (httpx.HTTPError, msgspec.MsgspecError):
            pass  # the scoreboard is a nicety: the next poll may work
        await asyncio.sleep(POLL_INTERVAL_S)
