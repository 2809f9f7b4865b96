"""The commands as users run them: real processes, real sockets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

ROOT = Path(__file__).resolve().parent.parent
SWITCHBOARD = [sys.executable, "-m", "gateway"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SWITCHBOARD, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60
    )


def test_check_config_accepts_the_demo() -> None:
    result = run("check-config", "examples/demo.yaml")
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_check_config_refuses_a_broken_file_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text(
        "auth: none\n"
        "providers: {groq: {kind: openai, base_url: 'https://api.groq.com/openai/v1'}}\n"
        "models: {llama: {deployments: [{provider: togther, model: x}]}}\n"
    )
    result = run("check-config", str(config))
    assert result.returncode == 1
    assert "models.llama.deployments[0].provider: unknown provider 'togther'" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_broken_config_before_binding(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text("store: memory://\n")
    result = run("serve", "--config", str(config), "--port", "1")
    assert result.returncode == 1
    assert "auth" in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served_default(tmp_path: Path) -> Iterator[str]:
    """`switchboard serve` with no config at all: the embedded demo, as `make run` uses."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "SWITCHBOARD_CONFIG"}
    log_path = tmp_path / "serve.log"
    # the request log goes to stdout: into a file, never an unread pipe that could fill
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*SWITCHBOARD, "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        # a cold start imports a lot; on a loaded 2-core machine it has taken over 20 s.
        # The wait ends as soon as the server answers, so a generous bound costs nothing.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"switchboard serve exited: {log_path.read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError(f"switchboard serve did not come up: {log_path.read_text()}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_with_embedded_defaults_answers_the_sdk(served_default: str) -> None:
    client = openai.OpenAI(base_url=f"{served_default}/v1", api_key="not-needed")
    assert {m.id for m in client.models.list()} >= {"demo-llama", "demo-instant"}
    response = client.chat.completions.create(
        model="demo-instant", messages=[{"role": "user", "content": "hello"}]
    )
    assert response.choices[0].message.content
    assert response.model_extra is not None
    assert response.model_extra["routing_metadata"]["provider"] == "sim-instant"
    assert httpx.get(f"{served_default}/readyz").json() == {"status": "ready", "store": "memory"}


def test_check_config_refuses_a_deployment_without_any_price(tmp_path: Path) -> None:
    config = tmp_path / "unpriced.yaml"
    config.write_text(
        "auth: none\n"
        "providers: {local: {kind: openai, base_url: 'http://127.0.0.1:9/v1'}}\n"
        "models: {mine: {deployments: [{provider: local, model: my-finetune}]}}\n"
    )
    result = run("check-config", str(config))
    assert result.returncode == 1
    assert "models.mine.deployments[0].input_per_mtok: no price set" in result.stderr
