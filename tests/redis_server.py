"""Real redis-server processes for tests, on free loopback ports in temporary folders:
never the machine's Redis at 127.0.0.1:6379.

Fixtures:
- `redis_server`: the session's shared server, as a URL (`SWITCHBOARD_TEST_REDIS_URL`
  when set, else a server of our own);
- `redis_url`, `redis_prefix`: that URL, and a key prefix of the test's own, whose keys
  are deleted afterwards (tests share the server, never each other's keys);
- `own_redis_server`: a private `RedisServer` to stop and restart;
- `redis_cluster`: a three-master cluster for the module;
- `redis_sentinel`: a master and a sentinel watching it (`SENTINEL_SERVICE`), for the module.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
import redis

START_TIMEOUT = 30.0  # a loaded machine has taken over 5 s to start a server
CLUSTER_TIMEOUT = 60.0  # the nodes agree on the slots through gossip: seconds under load
PORT_TRIES = 5


class _PortTaken(Exception):
    """Another process bound the port between our pick and Redis's bind."""


SENTINEL_SERVICE = "switchboard-test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(
    ready: Callable[[], bool],
    what: str,
    process: subprocess.Popen[bytes],
    timeout: float = START_TIMEOUT,
) -> None:
    """Until `ready()`: fails if the process exits, or past `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if ready():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{what} not ready within {timeout} s")


class RedisServer:
    """One redis-server; `extra` arguments are appended to its command line."""

    def __init__(self, *extra: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self._fixed_port = port is not None
        self._started = False
        self.extra = extra
        self.dir = Path(tempfile.mkdtemp(prefix="switchboard-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)

    def start(self) -> RedisServer:
        """Start it; the first time, on other free ports if another process took the ones
        picked (a port is free when picked, and may not be by the time Redis binds it);
        afterwards on the same ones, as a restart needs (nodes.conf, the clients)."""
        for attempt in range(PORT_TRIES):
            try:
                self._start()
            except _PortTaken:
                if self._started or self._fixed_port or attempt == PORT_TRIES - 1:
                    raise RuntimeError(f"redis-server: port {self.port} taken") from None
                self._pick_ports()
                continue
            self._started = True
            return self
        raise AssertionError("unreachable")

    def _pick_ports(self) -> None:
        self.port = free_port()
        extra = list(self.extra)
        if "--cluster-port" in extra:
            extra[extra.index("--cluster-port") + 1] = str(free_port())
        self.extra = tuple(extra)

    def _start(self) -> None:
        command = [
            "redis-server",
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)),
            *("--save", "", "--appendonly", "no", "--logfile", "redis.log"),
            *self.extra,
        ]
        log = self.dir / "redis.log"
        log.unlink(missing_ok=True)  # what this start writes, to read if it fails
        # no pipes shared with the test run: a killed test must not leave them held open
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            _wait(self._ping, f"redis-server on port {self.port}", self._process)
        except RuntimeError as exc:
            self.stop()
            text = log.read_text() if log.exists() else ""
            if "Address already in use" in text:
                raise _PortTaken from None
            raise RuntimeError(f"{exc}\n{text}") from None

    def _ping(self) -> bool:
        with self.client() as client:
            return bool(client.ping())

    def stop(self) -> None:
        """Kill it: no goodbye to the clients, as when a server dies."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=5)
            self._process = None

    def restart(self) -> None:
        """Start again on the same port, empty (nothing is saved)."""
        self.stop()
        self.start()

    def flushall(self) -> None:
        with self.client() as client:
            client.flushall()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class RedisClusterServers:
    """Three masters, each holding a third of the slots, no replicas."""

    def __init__(self, size: int = 3) -> None:
        self.servers = [
            RedisServer(
                *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                *("--cluster-node-timeout", "2000"),
                # the bus port is port + 10000 unless set, and may be taken or too high
                *("--cluster-port", str(free_port())),
            )
            for _ in range(size)
        ]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in self.servers)

    def start(self) -> RedisClusterServers:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        for server in self.servers:
            server.start()
        subprocess.run(
            [
                *("redis-cli", "--cluster", "create"),
                *(f"127.0.0.1:{s.port}" for s in self.servers),
                *("--cluster-replicas", "0", "--cluster-yes"),
            ],
            check=True,
            capture_output=True,
            timeout=CLUSTER_TIMEOUT,
        )
        for server in self.servers:
            assert server._process is not None
            _wait(partial(_cluster_ok, server), "the cluster", server._process, CLUSTER_TIMEOUT)

    def close(self) -> None:
        for server in self.servers:
            server.close()


def _cluster_ok(server: RedisServer) -> bool:
    with server.client() as client:
        info = client.execute_command("CLUSTER INFO")  # redis-py parses it into a dict
    return bool(info.get("cluster_state") == "ok")


class RedisSentinelServers:
    """A master and one sentinel that monitors it as `SENTINEL_SERVICE`."""

    def __init__(self) -> None:
        self.master = RedisServer()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="switchboard-sentinel-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{SENTINEL_SERVICE}/0"

    def start(self) -> RedisSentinelServers:
        self.master.start()
        config = self.dir / "sentinel.conf"  # sentinel rewrites it: a file of its own
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"logfile sentinel.log\n"
            f"sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {self.master.port} 1\n"
        )
        self._process = subprocess.Popen(
            ["redis-server", str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait(self._knows_master, "redis sentinel", self._process)
        except BaseException:
            self.close()
            raise
        return self

    def _knows_master(self) -> bool:
        with redis.Redis(port=self.port, socket_timeout=2) as client:
            return client.sentinel_get_master_addr_by_name(SENTINEL_SERVICE) is not None

    def close(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.master.close()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """The URL of the session's shared Redis."""
    shared = os.environ.get("SWITCHBOARD_TEST_REDIS_URL")
    if shared:
        yield shared
        return
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def redis_url(redis_server: str) -> str:
    return redis_server


@pytest.fixture
def redis_prefix(redis_server: str) -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted after the test."""
    prefix = f"sbtest-{uuid.uuid4().hex[:12]}"
    yield prefix
    with redis.Redis.from_url(redis_server, socket_timeout=2) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
        if keys:
            client.delete(*keys)


@pytest.fixture
def own_redis_server() -> Iterator[RedisServer]:
    """A server of the test's own (whatever SWITCHBOARD_TEST_REDIS_URL says), to kill."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisClusterServers]:
    cluster = RedisClusterServers()
    try:
        yield cluster.start()
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def redis_sentinel() -> Iterator[RedisSentinelServers]:
    servers = RedisSentinelServers()
    try:
        yield servers.start()
    finally:
        servers.close()


# ------------------------------------------------------------------ failover fixtures


class SentinelGroup:
    """A primary, one replica and three sentinels (quorum 2), on loopback: the smallest
    Sentinel deployment that fails over for real. `kill_primary()` kills the primary as
    a crash would; the sentinels then promote the replica (about 1-3 s here)."""

    SENTINELS = 3
    DOWN_AFTER_MS = 1000

    def __init__(self, service: str = SENTINEL_SERVICE) -> None:
        self.service = service
        self.primary = RedisServer()
        self.replica = RedisServer("--replicaof", "127.0.0.1", str(self.primary.port))
        self.ports = [free_port() for _ in range(self.SENTINELS)]
        self.dir = Path(tempfile.mkdtemp(prefix="switchboard-sentinels-"))
        self._sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        nodes = ",".join(f"127.0.0.1:{port}" for port in self.ports)
        return f"redis+sentinel://{nodes}/{self.service}/0"

    def start(self) -> SentinelGroup:
        try:
            self.primary.start()
            self.replica.start()
            assert self.replica._process is not None
            _wait_long(self._replica_in_sync, "the replica's sync", self.replica._process)
            for i, port in enumerate(self.ports):
                self._sentinels.append(self._start_sentinel(i, port))
            for process in self._sentinels:
                _wait_long(self._sentinels_see_everyone, "the sentinels", process)
        except BaseException:
            self.close()
            raise
        return self

    def _start_sentinel(self, index: int, port: int) -> subprocess.Popen[bytes]:
        folder = self.dir / f"s{index}"
        folder.mkdir()
        config = folder / "sentinel.conf"  # sentinel rewrites it: a file of its own
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {folder}\nlogfile sentinel.log\n"
            f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} 2\n"
            f"sentinel down-after-milliseconds {self.service} {self.DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {self.service} 10000\n"
            f"sentinel parallel-syncs {self.service} 1\n"
        )
        return subprocess.Popen(
            ["redis-server", str(config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _replica_in_sync(self) -> bool:
        with self.replica.client() as client:
            return bool(client.info("replication").get("master_link_status") == "up")

    def _sentinels_see_everyone(self) -> bool:
        for port in self.ports:
            with redis.Redis(port=port, socket_timeout=2) as client:
                state = client.sentinel_master(self.service)  # redis-py parses it
                if int(state["num-slaves"]) < 1 or int(state["num-other-sentinels"]) < 2:
                    return False
        return True

    def primary_port(self) -> int:
        """The primary's port as the sentinels see it now."""
        with redis.Redis(port=self.ports[0], socket_timeout=2) as client:
            address = client.sentinel_get_master_addr_by_name(self.service)
        return int(address[1])

    def primary_client(self) -> redis.Redis:
        return redis.Redis(port=self.primary_port(), socket_timeout=2)

    def kill_primary(self) -> RedisServer:
        """Kill whichever server is primary now; the one killed, to restart later."""
        port = self.primary_port()
        dead = self.primary if self.primary.port == port else self.replica
        dead.stop()
        return dead

    def wait_for_new_primary(self, old_port: int, timeout: float = 30.0) -> int:
        """The promoted replica's port, once every sentinel agrees on it and it writes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                ports = set()
                for port in self.ports:
                    with redis.Redis(port=port, socket_timeout=1) as client:
                        ports.add(int(client.sentinel_get_master_addr_by_name(self.service)[1]))
                if len(ports) == 1 and old_port not in ports:
                    new = ports.pop()
                    with redis.Redis(port=new, socket_timeout=1) as client:
                        if client.info("replication").get("role") == "master":
                            return new
            except (redis.RedisError, OSError, TypeError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"no new primary within {timeout} s")

    def close(self) -> None:
        for process in self._sentinels:
            process.kill()
            process.wait(timeout=5)
        self._sentinels = []
        shutil.rmtree(self.dir, ignore_errors=True)
        self.replica.close()
        self.primary.close()


def _wait_long(ready: Callable[[], bool], what: str, process: subprocess.Popen[bytes]) -> None:
    """As `_wait`, for what takes Redis a few of its own cycles (sentinels find each other
    through hello messages every 2 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            if ready():
                return
        except (redis.RedisError, OSError, KeyError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready within 30 s")


class DurableCluster(RedisClusterServers):
    """Three masters that keep their data across a restart (append-only file, fsync on
    every write), as a node restarted for an upgrade does; `restart(i)` restarts one."""

    def __init__(self) -> None:
        super().__init__()
        for server in self.servers:
            server.extra = (*server.extra, "--appendonly", "yes", "--appendfsync", "always")

    def restart(self, index: int) -> None:
        server = self.servers[index]
        server.stop()
        server.start()  # same port, same folder: nodes.conf and the AOF bring it back
        assert server._process is not None
        _wait(
            partial(_cluster_ok, server),
            "the cluster after a restart",
            server._process,
            CLUSTER_TIMEOUT,
        )

    def node_of(self, key: str) -> int:
        """The index of the master that holds `key`."""
        with self.servers[0].client() as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    port = int(master[1])
                    return next(i for i, s in enumerate(self.servers) if s.port == port)
        raise LookupError(key)


@pytest.fixture
def sentinel_group() -> Iterator[SentinelGroup]:
    """A primary, a replica and three sentinels of the test's own (it fails them over)."""
    group = SentinelGroup()
    try:
        yield group.start()
    finally:
        group.close()


@pytest.fixture
def durable_cluster() -> Iterator[DurableCluster]:
    """A three-master cluster of the test's own, whose nodes survive a restart."""
    cluster = DurableCluster()
    try:
        yield cluster.start()
    finally:
        cluster.close()
