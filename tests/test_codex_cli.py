"""Codex CLI (`codex exec`) against the gateway, offline on loopback: one prompt to a
deployment with its own Responses API (forwarded) and one to a chat upstream (translated).

Codex comes from `make codex` (npm, into `.tools/codex`), or the path in
`SWITCHBOARD_CODEX`. Without it the test is skipped, unless `SWITCHBOARD_REQUIRE_CODEX`
is set (CI sets it: there, a missing Codex is a failure). Each run is bounded by a
timeout, with a private CODEX_HOME and HOME, and the settings that keep Codex off the
internet (`/work/shared/REAL_CLIENTS.md`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway_server import GatewayServer
from tests.mock_upstream import DEFAULT_TEXT, MockUpstream

ROOT = Path(__file__).resolve().parent.parent
CODEX = Path(os.environ.get("SWITCHBOARD_CODEX", ROOT / ".tools/codex/node_modules/.bin/codex"))
GATEWAY_KEY = "sk-codex-test"
RUN_TIMEOUT = 90  # seconds for one `codex exec`; a run takes a few

if not CODEX.exists():
    if os.environ.get("SWITCHBOARD_REQUIRE_CODEX"):
        raise RuntimeError(f"Codex CLI not found at {CODEX} (run `make codex`)")
    pytest.skip(f"Codex CLI not installed at {CODEX} (run `make codex`)", allow_module_level=True)

CONFIG_TOML = """\
model_provider = "switchboard"
check_for_update_on_startup = false
[model_providers.switchboard]
name = "switchboard"
base_url = "{url}/v1"
wire_api = "responses"
env_key = "SWITCHBOARD_API_KEY"
[analytics]
enabled = false
[features]
plugins = false
remote_plugin = false
apps = false
"""


@pytest.fixture(scope="module")
def native_upstream() -> Iterator[MockUpstream]:
    with MockUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    shared_upstream: MockUpstream, native_upstream: MockUpstream
) -> Iterator[GatewayServer]:
    prices = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}
    config = {
        "auth": "none",
        "providers": {
            "chat": {"kind": "openai", "base_url": shared_upstream.url, "api_key": "sk-1"},
            "native": {
                "kind": "openai",
                "base_url": native_upstream.url,
                "api_key": "sk-2",
                "responses_api": True,
            },
        },
        "models": {
            "translated": {"deployments": [{"provider": "chat", "model": "m-1", **prices}]},
            "native": {"deployments": [{"provider": "native", "model": "gpt-4o", **prices}]},
        },
    }
    server = GatewayServer(config).start()
    yield server
    server.stop()


def codex_exec(gateway: GatewayServer, home: Path, model: str) -> subprocess.CompletedProcess[str]:
    codex_home = home / "codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(CONFIG_TOML.format(url=gateway.url))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(codex_home),
        "SWITCHBOARD_API_KEY": GATEWAY_KEY,
        "NO_COLOR": "1",
    }
    prompt = ["exec", "--skip-git-repo-check", "--ephemeral", "-m", model, "say hi"]
    return subprocess.run(
        [str(CODEX), *prompt],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def test_codex_on_a_native_deployment(
    gateway: GatewayServer, native_upstream: MockUpstream, tmp_path: Path
) -> None:
    native_upstream.reset()
    result = codex_exec(gateway, tmp_path, "native")
    assert result.returncode == 0, result.stderr
    assert DEFAULT_TEXT in result.stdout
    (sent,) = native_upstream.requests
    assert sent.path == "/v1/responses"
    body = sent.json
    # forwarded as Codex sent it, with the deployment's model id
    assert body["model"] == "gpt-4o" and body["stream"] is True and body["store"] is False
    assert body["include"] == ["reasoning.encrypted_content"] and "client_metadata" in body
    assert {tool["type"] for tool in body["tools"]} >= {"function", "web_search"}
    assert body["input"][-1]["content"][0] == {"type": "input_text", "text": "say hi"}


def test_codex_on_a_translated_deployment(
    gateway: GatewayServer, upstream: MockUpstream, tmp_path: Path
) -> None:
    result = codex_exec(gateway, tmp_path, "translated")
    assert result.returncode == 0, result.stderr
    assert DEFAULT_TEXT in result.stdout
    (sent,) = upstream.requests
    assert sent.path == "/v1/chat/completions"
    body = sent.json
    assert body["model"] == "m-1" and body["stream"] is True
    assert body["messages"][0]["role"] == "system"  # Codex's developer instructions
    assert body["messages"][-1] == {"role": "user", "content": [{"type": "text", "text": "say hi"}]}
    names = {tool["function"]["name"] for tool in body["tools"]}
    assert "exec_command" in names  # its function tools; the namespace and web_search dropped
    for dropped in ("include", "prompt_cache_key", "client_metadata", "store"):
        assert dropped not in body
