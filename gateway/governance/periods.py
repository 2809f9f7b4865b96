"""Budget periods: the UTC day and the UTC calendar month."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

Period = Literal["daily", "monthly"]
PERIODS: tuple[Period, ...] = ("daily", "monthly")


def period_id(period: Period, now: float) -> str:
    """`2026-12-07` for a day, `2026-12` for a month."""
    moment = datetime.fromtimestamp(now, UTC)
    return moment.strftime("%Y-%m-%d" if period == "daily" else "%Y-%m")


def period_end(period: Period, now: float) -> float:
    """Epoch seconds at which the period that holds `now` ends."""
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return (day + timedelta(days=1)).timestamp()
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return following.timestamp()


def day_ids(start: float, end: float) -> list[str]:
    """The UTC days from `start` to `end` (epoch seconds), both included."""
    first = datetime.fromtimestamp(start, UTC).date()
    last = datetime.fromtimestamp(end, UTC).date()
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
