"""Claude Code itself against the gateway: one prompt, non-interactively, with the
environment /work/shared/REAL_CLIENTS.md gives (no telemetry, no updater, one retry, a
private HOME), so it runs offline on loopback.

Claude Code first probes `HEAD /`, then streams `POST /v1/messages?beta=true` with its
full request (32000 max tokens, thinking, about 24 tools, system blocks with
cache_control, beta flags). When a stream fails it retries once without streaming,
which would hide a broken stream: each test checks that the upstream saw exactly one,
streamed, request.

Claude Code comes from `make claude-code` (npm, the version pinned in the Makefile, into
`.tools/claude-code`), or the path in `SWITCHBOARD_CLAUDE_CODE`. Without it the test is
skipped, unless `SWITCHBOARD_REQUIRE_CLAUDE_CODE` is set (CI sets it: there, a missing
Claude Code is a failure), as for Codex CLI (tests/test_codex_cli.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway_server import GatewayServer
from tests.mock_upstream import MockUpstream, SSEReply
from tests.test_messages_e2e import sse_events

ROOT = Path(__file__).resolve().parent.parent
CLAUDE_CODE = Path(
    os.environ.get("SWITCHBOARD_CLAUDE_CODE", ROOT / ".tools/claude-code/node_modules/.bin/claude")
)
GATEWAY_KEY = "sb-claude-code-key"
PROVIDER_KEY = "sk-ant-claude-code-upstream"
CLAUDE = "claude-sonnet-4-5-20250929"


if not CLAUDE_CODE.exists():
    if os.environ.get("SWITCHBOARD_REQUIRE_CLAUDE_CODE"):
        raise RuntimeError(f"Claude Code not found at {CLAUDE_CODE} (run `make claude-code`)")
    pytest.skip(
        f"Claude Code not installed at {CLAUDE_CODE} (run `make claude-code`)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def claude_code() -> Path:
    return CLAUDE_CODE


@pytest.fixture(scope="module")
def openai_upstream() -> Iterator[MockUpstream]:
    with MockUpstream() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    shared_upstream: MockUpstream, openai_upstream: MockUpstream
) -> Iterator[GatewayServer]:
    def model(provider: str, model: str) -> dict[str, Any]:
        deployment = {
            "provider": provider,
            "model": model,
            "input_per_mtok": 3,
            "output_per_mtok": 15,
        }
        return {"deployments": [deployment]}

    key = {"name": "cli", "key_sha256": hashlib.sha256(GATEWAY_KEY.encode()).hexdigest()}
    config = {
        "store": "memory://",
        "auth": {"keys": [key]},
        "providers": {
            "claude": {
                "kind": "anthropic",
                "base_url": f"http://127.0.0.1:{shared_upstream.port}",
                "api_key": PROVIDER_KEY,
            },
            "openai": {"kind": "openai", "base_url": openai_upstream.url, "api_key": "sk-up"},
        },
        "models": {
            "claude-native": model("claude", CLAUDE),
            "claude-translated": model("openai", "gpt-4o-mini"),
        },
    }
    server = GatewayServer(config).start()
    yield server
    server.stop()


def run_claude_code(binary: Path, gateway: GatewayServer, model: str, home: Path) -> Any:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": gateway.url,
        "ANTHROPIC_API_KEY": GATEWAY_KEY,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        "ANTHROPIC_SMALL_FAST_MODEL": model,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_MAX_RETRIES": "1",
    }
    done = subprocess.run(
        [str(binary), "-p", "say hi", "--model", model, "--output-format", "json",
         "--no-session-persistence"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_claude_code_through_a_native_anthropic_deployment(
    claude_code: Path, gateway: GatewayServer, upstream: MockUpstream, tmp_path: Path
) -> None:
    upstream.set_default(SSEReply(sse_events("stream_text.sse"), send_done=False))
    result = run_claude_code(claude_code, gateway, "claude-native", tmp_path)

    assert (result["is_error"], result["result"]) == (False, "Hello!")
    [sent] = upstream.requests  # one streamed request: no fallback without streaming
    assert (sent.path, sent.query) == ("/v1/messages", {"beta": "true"})
    assert sent.headers["x-api-key"] == PROVIDER_KEY  # the gateway key stays at the gateway
    assert "claude-code-20250219" in sent.headers["anthropic-beta"]
    body = sent.json
    assert (body["model"], body["stream"], body["max_tokens"]) == (CLAUDE, True, 32000)
    assert len(body["tools"]) > 10
    assert any("cache_control" in block for block in body["system"])


def test_claude_code_through_a_translated_deployment(
    claude_code: Path,
    gateway: GatewayServer,
    openai_upstream: MockUpstream,
    tmp_path: Path,
) -> None:
    openai_upstream.reset()
    result = run_claude_code(claude_code, gateway, "claude-translated", tmp_path)

    assert (result["is_error"], result["result"]) == (False, "Hello from mock upstream")
    [sent] = openai_upstream.requests
    assert sent.path == "/v1/chat/completions"
    body = sent.json
    assert (body["model"], body["stream"]) == ("gpt-4o-mini", True)
    # Claude Code asks for 32000; gpt-4o-mini writes 16384 at most (the model catalogue)
    assert body["max_tokens"] == 16384
    assert body["messages"][0]["role"] == "system"
    assert len(body["tools"]) > 10 and all(t["type"] == "function" for t in body["tools"])
    # the answer's usage: what the mock counted, not the message_start estimate
    assert result["usage"]["output_tokens"] == 4
