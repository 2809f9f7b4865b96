"""The status page at `/ui`: static files shipped in this package (no build step, nothing
fetched from another host) that read the gateway's JSON endpoints, and the few endpoints
only it needed: the last requests, traffic per deployment over the last minutes, and
budgets with their use. Its data is gathered by an accounts sink, off the request path."""

from gateway.ui.recent import RecentRequests

__all__ = ["RecentRequests"]
