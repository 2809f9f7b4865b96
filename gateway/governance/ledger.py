"""The spend ledger: cost, requests and tokens by key, team, model, provider and UTC day.

Each UTC day is one hash in the store, whose fields are `key␉team␉model␉provider␉metric`
and whose values are integers (nano-USD, counts, tokens); a batch of finished requests is
summed here first, then added with one HINCRBY per field. A day expires after the
configured retention. `usage()` reads the days asked for and groups them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import msgspec

from gateway.accounting import RequestRecord
from gateway.governance.ask import NANO, nano_usd
from providers.errors import InvalidRequest

Dimension = Literal["key", "team", "model", "provider", "day"]
DIMENSIONS: tuple[Dimension, ...] = ("key", "team", "model", "provider", "day")
_SEP = "\t"  # names never hold a tab: keys and teams are `[A-Za-z0-9._-]`, models config
MAX_DAYS = 400  # a usage report reads at most this many days
METRICS = ("usd", "requests", "prompt_tokens", "completion_tokens", "estimated")

# day → field → amount
LedgerBatch = dict[str, dict[str, int]]


def day_of(epoch: float) -> str:
    # every record of a batch falls on the same day or two: the name is formatted once
    # per day, not per record (near midnight, datetime's own rounding decides)
    day, into = divmod(epoch, 86_400)
    if 0.001 < into < 86_399.999:
        return _day_name(int(day))
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


@functools.lru_cache(maxsize=16)
def _day_name(day: int) -> str:
    return datetime.fromtimestamp(day * 86_400 + 43_200, UTC).strftime("%Y-%m-%d")


def ledger_batch(records: Iterable[RequestRecord]) -> LedgerBatch:
    """What a batch of finished requests adds to the ledger: every request someone
    served (failed-midway and abandoned streams too), replays excepted."""
    # summed per (day, key, team, model, provider) first: the fields' names are built
    # once per group, not once per request
    groups: dict[tuple[str, str, str, str, str], list[int]] = {}
    for record in records:
        metadata = record.routing_metadata
        if metadata is None or record.replayed:
            continue
        group = (
            day_of(record.started_at),
            record.key or "",
            record.team or "",
            metadata.model_canonical,
            metadata.provider,
        )
        sums = groups.get(group)
        if sums is None:
            sums = groups[group] = [0, 0, 0, 0, 0]
        usage = record.usage
        sums[0] += nano_usd(record.cost_usd)
        sums[1] += 1
        if usage:
            sums[2] += usage.prompt_tokens
            sums[3] += usage.completion_tokens
        if record.cost_estimated:
            sums[4] += 1
    batch: LedgerBatch = {}
    for (day, *names), sums in groups.items():
        base = _SEP.join(names)
        fields = batch.setdefault(day, {})
        for metric, amount in zip(METRICS, sums, strict=True):
            if amount:
                field = f"{base}{_SEP}{metric}"
                fields[field] = fields.get(field, 0) + amount
    return batch


class UsageRow(msgspec.Struct, kw_only=True, omit_defaults=True):
    key: str | None = None
    team: str | None = None
    model: str | None = None
    provider: str | None = None
    day: str | None = None
    cost_usd: float = 0.0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated_requests: int = 0  # of those, priced on the gateway's own token count


def usage(
    days: Mapping[str, Mapping[str, int]],
    group_by: Sequence[Dimension],
    *,
    only_key: str | None = None,
) -> tuple[list[UsageRow], UsageRow]:
    """Rows grouped by the dimensions asked for (most expensive first), and the total.
    `only_key`: a client key sees only its own spend."""
    groups: dict[tuple[str, ...], list[int]] = {}
    total = [0, 0, 0, 0, 0]
    for day, fields in days.items():
        for field, amount in fields.items():
            parts = field.split(_SEP)
            if len(parts) != 5 or parts[4] not in METRICS:
                continue
            key, team, model, provider, metric = parts
            if only_key is not None and key != only_key:
                continue
            values = {"key": key, "team": team, "model": model, "provider": provider, "day": day}
            group = tuple(values[d] for d in group_by)
            sums = groups.setdefault(group, [0, 0, 0, 0, 0])
            index = METRICS.index(metric)
            sums[index] += amount
            total[index] += amount
    rows = [_row(dict(zip(group_by, group, strict=True)), sums) for group, sums in groups.items()]
    rows.sort(key=lambda r: (-r.cost_usd, r.day or "", r.key or "", r.model or ""))
    return rows, _row({}, total)


def _row(names: dict[str, str], sums: list[int]) -> UsageRow:
    return UsageRow(
        **{name: value or None for name, value in names.items()},
        cost_usd=round(sums[0] / NANO, 9),
        requests=sums[1],
        prompt_tokens=sums[2],
        completion_tokens=sums[3],
        estimated_requests=sums[4],
    )


def _day(value: str | None, param: str) -> date:
    if not value:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise InvalidRequest(
            f"Invalid value for '{param}': expected a UTC day as YYYY-MM-DD.", param=param
        ) from None


def _dimensions(value: str | None) -> list[Dimension]:
    names = [n.strip() for n in (value or "day").split(",") if n.strip()]
    chosen: list[Dimension] = []
    for name in names:
        matched = next((d for d in DIMENSIONS if d == name), None)
        if matched is None:
            raise InvalidRequest(
                f"Invalid value for 'group_by': '{name[:40]}'; use one or more of "
                f"{', '.join(DIMENSIONS)}, separated by commas.",
                param="group_by",
            )
        if matched not in chosen:
            chosen.append(matched)
    return chosen


def report_days(
    start_text: str | None, end_text: str | None, group_by_text: str | None
) -> tuple[str, str, list[Dimension], list[str]]:
    """From, to, the dimensions and the UTC days between, checked (400 if unusable)."""
    start, end = _day(start_text, "from"), _day(end_text, "to")
    if end < start:
        raise InvalidRequest("'to' is before 'from'.", param="to")
    if (end - start).days >= MAX_DAYS:
        raise InvalidRequest(f"At most {MAX_DAYS} days per request.", param="from")
    days = [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    return start.isoformat(), end.isoformat(), _dimensions(group_by_text), days
