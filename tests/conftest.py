from tests.gateway_server import gateway_factory
from tests.mock_upstream import mock_upstream, mock_upstream_factory, shared_upstream, upstream

__all__ = [
    "gateway_factory",
    "mock_upstream",
    "mock_upstream_factory",
    "shared_upstream",
    "upstream",
]
