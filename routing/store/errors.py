"""The store's own errors, for callers outside routing (the CLI, the admin endpoint)."""

from __future__ import annotations


class StoreUnavailable(Exception):
    """A write that must reach the shared store did not (a price override: setting it on
    this replica only would make replicas disagree on prices). Nothing was changed, on
    this replica either; the admin endpoint answers 503 and the caller may retry."""

    status = 503
