"""The image built from deploy/Dockerfile and run for real with podman (rootful, runc):
two replicas of it on one Redis, their health check, a request through each, the
non-root user and read-only root file system, and `podman stop` draining to exit 0.

No container registry is reachable from this machine, so the Dockerfile's base image is
made here: Debian bookworm by debootstrap, with Debian's Python 3.11, given to the build
as `PYTHON_IMAGE`. Slow (minutes: the base image, then `uv sync` inside the build), so it
is behind the `container` marker: `make test-container`, which CI runs after `make test`.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.redis_server import RedisServer, free_port
from tests.routing_setup import wait_until

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parent.parent
BASE = "localhost/switchboard-base:bookworm"
IMAGE = "localhost/switchboard:test"
CERTS = "/etc/ssl/certs/ca-certificates.crt"  # this machine's, with its TLS proxy's CA
# runc: crun refuses this machine's hybrid cgroups; ulimits: podman's defaults exceed ours
RUNTIME = ["--runtime", "runc"]
LIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]


def podman(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *RUNTIME, *args], capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"podman {args[0]}: {result.stdout}\n{result.stderr}"
    return result


def base_image(folder: Path) -> None:
    """Debian bookworm with its Python 3.11 and pip, as python:3.11-slim has them."""
    if subprocess.run(["podman", "image", "exists", BASE]).returncode == 0:
        return
    rootfs = folder / "rootfs"
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,python3-pip,ca-certificates",
            "bookworm",
            str(rootfs),
            "http://deb.debian.org/debian",
        ],
        check=True,
        capture_output=True,
        timeout=1200,
    )
    # the official image's Python is not Debian's managed one: pip may install into it
    for marker in rootfs.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
        marker.unlink()
    subprocess.run(
        ["tar", "-C", str(rootfs), "-cf", str(folder / "rootfs.tar"), "."], check=True, timeout=600
    )
    podman("import", "--change", 'CMD ["python3"]', str(folder / "rootfs.tar"), BASE)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    assert shutil.which("podman"), "podman is installed by .ci/run"
    base_image(tmp_path_factory.mktemp("base"))
    podman(
        "build",
        "--format",  # docker's, not OCI's: only it has HEALTHCHECK
        "docker",
        "--network",
        "host",
        *LIMITS,
        "--volume",
        f"{CERTS}:{CERTS}:ro",
        "--env",
        f"PIP_CERT={CERTS}",
        "--env",
        f"SSL_CERT_FILE={CERTS}",
        "--build-arg",
        f"PYTHON_IMAGE={BASE}",
        "-f",
        str(ROOT / "deploy" / "Dockerfile"),
        "-t",
        IMAGE,
        str(ROOT),
        timeout=1800,
    )
    return IMAGE


# the HEALTHCHECK the Dockerfile gives the image
HEALTH = (
    'python3 -c "import urllib.request; '
    "urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)\""
)


class Replica:
    def __init__(self, name: str, port: int) -> None:
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture
def two_replicas(image: str, tmp_path: Path) -> Iterator[list[Replica]]:
    with RedisServer() as redis_server:
        config = tmp_path / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "auth": "none",
                    "store": redis_server.url,
                    "providers": {"sim": {"kind": "simulated"}},
                    "models": {
                        "m": {
                            "deployments": [
                                {
                                    "provider": "sim",
                                    "model": "s",
                                    "input_per_mtok": 1,
                                    "output_per_mtok": 2,
                                }
                            ]
                        }
                    },
                }
            )
        )
        config.chmod(0o644)
        replicas = [Replica(f"sb-test-{i}-{free_port()}", free_port()) for i in range(2)]
        try:
            for replica in replicas:
                podman(
                    "run",
                    "--detach",
                    "--name",
                    replica.name,
                    "--network",
                    "host",
                    *LIMITS,
                    "--read-only",
                    "--tmpfs",
                    "/tmp",
                    "--cap-drop",
                    "ALL",
                    # the image's check, on this replica's port (host networking: the two
                    # replicas cannot both listen on 8080)
                    "--health-cmd",
                    HEALTH.replace("8080", str(replica.port)),
                    "--volume",
                    f"{config}:/etc/switchboard/config.yaml:ro",
                    "--env",
                    "SWITCHBOARD_CONFIG=/etc/switchboard/config.yaml",
                    image,
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(replica.port),
                    "--workers",
                    "2",
                )
            yield replicas
        finally:
            for replica in replicas:
                subprocess.run(
                    ["podman", *RUNTIME, "rm", "--force", replica.name],
                    capture_output=True,
                    timeout=120,
                )


def test_the_image_declares_its_health_check_and_user(image: str) -> None:
    check = podman("image", "inspect", image, "--format", "{{.Config.Healthcheck}}").stdout
    assert "http://127.0.0.1:8080/healthz" in check
    assert (
        podman("image", "inspect", image, "--format", "{{.Config.User}}").stdout.strip() == "10001"
    )


def test_two_replicas_of_the_image_serve_drain_and_stop_cleanly(
    two_replicas: list[Replica],
) -> None:
    def healthy(replica: Replica) -> bool:
        check = subprocess.run(
            ["podman", *RUNTIME, "healthcheck", "run", replica.name],
            capture_output=True,
            timeout=60,
        )
        return check.returncode == 0

    for replica in two_replicas:
        wait_until(lambda r=replica: healthy(r), timeout=120)  # the image's HEALTHCHECK
        answer = httpx.post(
            f"{replica.url}/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-switchboard-provider"] == "sim"
        assert httpx.get(f"{replica.url}/readyz").json()["store"] == "redis"
        user = podman("exec", replica.name, "id", "-u").stdout.strip()
        assert user == "10001"
    for replica in two_replicas:
        started = time.monotonic()
        podman("stop", "--time", "40", replica.name, timeout=120)
        state = podman("inspect", "--format", "{{.State.ExitCode}}", replica.name).stdout
        assert state.strip() == "0"  # drained and exited, not killed
        assert time.monotonic() - started < 40
