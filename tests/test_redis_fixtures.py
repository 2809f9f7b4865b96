"""The test fixtures' Redis servers start on a busy machine: a port another process took
between our pick and Redis's bind is picked again (for the client port and a cluster's
bus port alike), and a cluster is waited for until its nodes agree."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import redis

from tests.redis_server import RedisClusterServers, RedisServer


@pytest.fixture
def taken_ports() -> Iterator[list[int]]:
    """Ports held by listening sockets of this process, as another program would."""
    sockets = []
    for _ in range(2):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sockets.append(sock)
    yield [s.getsockname()[1] for s in sockets]
    for sock in sockets:
        sock.close()


def test_a_server_whose_port_was_taken_starts_on_another(taken_ports: list[int]) -> None:
    server = RedisServer()
    server.port = taken_ports[0]  # as if another process bound it since the pick
    try:
        server.start()
        assert server.port != taken_ports[0]
        with server.client() as client:
            assert client.ping()
        server.stop()
        server.start()  # a restart keeps its port: clients and nodes.conf know it
        assert server.port not in taken_ports
    finally:
        server.close()


def test_a_cluster_whose_bus_port_was_taken_starts(taken_ports: list[int]) -> None:
    cluster = RedisClusterServers()
    first = cluster.servers[0]
    at = first.extra.index("--cluster-port") + 1
    first.extra = (*first.extra[:at], str(taken_ports[1]), *first.extra[at + 1 :])
    try:
        cluster.start()
        assert first.extra[at] != str(taken_ports[1])
        client = redis.RedisCluster(host="127.0.0.1", port=first.port, socket_timeout=5)
        try:
            client.set("{x}key", "value")
            assert client.get("{x}key") == b"value"
        finally:
            client.close()
    finally:
        cluster.close()
