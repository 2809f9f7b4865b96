"""What admission asks of the store, what it answers, and what settlement sends later.

Money is in nano-USD integers (1e-9 USD) so that every replica and Redis add it exactly;
times are milliseconds. A rate limit is GCRA over one minute: each request (or token)
pushes the scope's theoretical arrival time (TAT) on by `60000 / limit` ms, and it is
admitted while the TAT stays within one minute of now, so a full minute's allowance may
be used at once and then refills steadily.

The admission types are built on every request and hold only strings, numbers and
tuples of each other, so they can never be part of a reference cycle: `gc=False` keeps
them out of the garbage collector's young generation.
"""

from __future__ import annotations

import msgspec

NANO = 1_000_000_000  # nano-USD per USD
WINDOW_MS = 60_000  # the period of rpm and tpm


def nano_usd(usd: float) -> int:
    """Rounded up: a reservation never holds less than the cost it stands for."""
    return int(-(-usd * NANO // 1))


class RateAsk(msgspec.Struct, frozen=True, array_like=True, gc=False):
    key: str  # e.g. `key:alice:rpm`
    limit: int  # per minute
    cost: int  # requests (1) or tokens this request takes


class BudgetAsk(msgspec.Struct, frozen=True, array_like=True, gc=False):
    bucket: str  # e.g. `team:search:d:2026-12-07`
    limit: int  # nano-USD


class Ask(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    hold: str  # id of the reservation ("" with no budgets)
    rates: tuple[RateAsk, ...] = ()
    budgets: tuple[BudgetAsk, ...] = ()
    amount: int = 0  # nano-USD reserved in every budget bucket
    hold_ms: int = 0  # how long the reservation lives unless settled


class RateState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    remaining: int
    reset_ms: int  # until the scope's whole minute is available again


class Verdict(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    allowed: bool
    shared: bool = False  # decided by the shared store (else by this replica alone)
    rates: tuple[RateState, ...] = ()  # one per `Ask.rates`, after this request
    refused: int = -1  # allowed=False: index into rates, or len(rates) + budget index
    retry_after_ms: int = 0  # for a refused rate limit


class Settlement(msgspec.Struct, frozen=True, kw_only=True):
    """A finished request's true cost, to replace its reservation."""

    hold: str  # "" when nothing was reserved
    shared: bool  # the reservation is in the shared store (else in this replica's memory)
    buckets: tuple[str, ...]  # charged the cost: the hold's, and the spend-only ones
    actual: int  # what it cost (nano-USD)
    tokens: tuple[tuple[str, int, int], ...] = ()  # (tpm key, limit, real - admitted)


def interval_ms(limit: int) -> float:
    return WINDOW_MS / limit
