import pytest

from tests.gateway_server import GatewayServer, gateway_factory
from tests.mock_upstream import mock_upstream, mock_upstream_factory, shared_upstream, upstream
from tests.redis_server import (
    durable_cluster,
    own_redis_server,
    redis_cluster,
    redis_prefix,
    redis_sentinel,
    redis_server,
    redis_url,
    sentinel_group,
)

__all__ = [
    "durable_cluster",
    "gateway_factory",
    "mock_upstream",
    "mock_upstream_factory",
    "own_redis_server",
    "redis_cluster",
    "redis_prefix",
    "redis_sentinel",
    "redis_server",
    "redis_url",
    "sentinel_group",
    "shared_upstream",
    "upstream",
]


@pytest.fixture(autouse=True)
def _fresh_routing(request: pytest.FixtureRequest) -> None:
    """Modules share one gateway (`gateway` fixture) across tests: each test starts with
    nothing learned, so one test's cooldown or open circuit never decides another's."""
    if "gateway" in request.fixturenames:
        gateway = request.getfixturevalue("gateway")
        if isinstance(gateway, GatewayServer):
            gateway.forget_routing()
