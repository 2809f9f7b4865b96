"""The operator's command line, run as a user runs it: real processes, real sockets, a
real redis-server and mock upstreams for `doctor`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.serving.drain import DRAIN
from tests.gateway_server import GatewayServer, upstream_config
from tests.mock_upstream import ErrorReply, JSONReply, MockUpstream
from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
SWITCHBOARD = [sys.executable, "-m", "gateway"]
PRODUCTION_VARIABLES = [
    "SWITCHBOARD_TEAM_A_KEY_SHA256",
    "OPENAI_API_KEY",
    "GROQ_API_KEY",
    "TOGETHER_API_KEY",
    "ANTHROPIC_API_KEY",
    "SWITCHBOARD_ADMIN_KEY_SHA256",
]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SWITCHBOARD, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60
    )


def write(folder: Path, config: dict[str, Any] | str) -> str:
    path = folder / "config.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config))
    return str(path)


# --- help and version ---------------------------------------------------------------


def test_bare_switchboard_prints_help_listing_every_command() -> None:
    result = run()
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: switchboard")
    for command in ("serve", "check-config", "doctor", "prices", "loadgen"):
        assert command in result.stdout


def test_version_is_the_package_version() -> None:
    from importlib.metadata import version

    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"switchboard {version('switchboard')}"


def test_serve_help_shows_the_defaults() -> None:
    result = run("serve", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # argparse wraps lines where it likes
    for default in ("(default: 127.0.0.1)", "(default: 8080)", "(default: 1)", "(default: 30.0)"):
        assert default in text
    assert "'auto' for one per core" in text


# --- check-config ---------------------------------------------------------------------


def test_check_config_names_every_missing_variable_in_one_run() -> None:
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION_VARIABLES}
    result = run("check-config", "examples/production.yaml", env=env)
    assert result.returncode == 1
    assert "6 problems" in result.stderr
    for name in PRODUCTION_VARIABLES:
        assert f"environment variable {name} is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_lists_problems_of_every_section_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "auth: none\n"
        "store: mongo://db\n"
        "providers:\n"
        "  groq: {kind: openai, preset: groq, timeout: -1}\n"
        "  odd: {kind: nosuch}\n"
        "models:\n"
        "  a: {deployments: [{provider: togther, model: x}]}\n"
        "  b: {deployments: [{provider: groq, model: y, input_per_mtok: cheap}]}\n"
        "routing: {strategy: fastest}\n"
        "modles: {}\n",
    )
    result = run("check-config", path)
    assert result.returncode == 1
    for problem in (
        "store: Expected `str` matching regex",
        "providers.groq.timeout: Expected `float` > 0.0",
        "providers.odd.kind: Invalid value 'nosuch'",
        "models.a.deployments[0].provider: unknown provider 'togther'",
        "models.b.deployments[0].input_per_mtok: Expected `float | null`, got `str`",
        "routing.strategy: Invalid enum value 'fastest'",
        "(top level): Object contains unknown field `modles`",
    ):
        assert problem in result.stderr
    assert "7 problems" in result.stderr


def test_check_config_warns_on_a_config_that_serves_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, {"auth": "none", "providers": {"sim": {"kind": "simulated"}}})
    result = run("check-config", path)
    assert result.returncode == 0, result.stderr
    assert "ok (1 providers, 0 models" in result.stdout
    assert "warning: models: none defined, so every request is refused" in result.stderr
    assert "warning: providers.sim: no model has a deployment on it" in result.stderr


def test_an_unquoted_variable_in_a_flow_map_gets_the_quoting_hint(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "auth: none\nproviders:\n  openai: {kind: openai, preset: openai, api_key: ${KEY}}\n",
    )
    result = run("check-config", path)
    assert result.returncode == 1
    assert f"{path}:3:" in result.stderr  # file:line:column
    assert "not valid YAML" in result.stderr
    assert "hint: quote a `${VAR}`" in result.stderr
    assert 'api_key: "${OPENAI_API_KEY}"' in result.stderr
    assert "Traceback" not in result.stderr


def test_other_yaml_mistakes_name_the_line_without_the_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "auth: none\nstore: a: b\n")
    result = run("check-config", path)
    assert result.returncode == 1
    assert f"{path}:2:9: not valid YAML: mapping values are not allowed here" in result.stderr
    assert "hint" not in result.stderr


# --- serve ------------------------------------------------------------------------------


def test_a_busy_port_fails_before_any_serving_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run("serve", "--port", str(port))
    assert result.returncode == 1
    assert "serving" not in result.stdout
    assert f"cannot listen on 127.0.0.1:{port}: the port is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_workers_must_be_a_number_or_auto() -> None:
    result = run("serve", "--workers", "many")
    assert result.returncode == 2
    assert "a number or 'auto'" in result.stderr


# --- /readyz --------------------------------------------------------------------------


def test_readyz_is_not_ready_when_no_model_has_a_healthy_deployment(
    mock_upstream: MockUpstream,
) -> None:
    server = GatewayServer(upstream_config(mock_upstream.url)).start()
    try:
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        # a refused key puts the only deployment in its auth cooldown (minutes)
        mock_upstream.enqueue(ErrorReply(401, "Incorrect API key provided", code="invalid_api_key"))
        answer = server.post(
            {"model": "test-model", "messages": [{"role": "user", "content": "x"}]}
        )
        assert answer.status_code >= 400
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["status"] == "unavailable"
        assert body["detail"].startswith("no model has a healthy deployment (mock: ")
    finally:
        server.stop()


def test_readyz_is_not_ready_while_draining(mock_upstream: MockUpstream) -> None:
    server = GatewayServer(upstream_config(mock_upstream.url)).start()
    try:
        DRAIN.begin()
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 503
        assert ready.json() == {"status": "draining", "store": "memory", "detail": "shutting down"}
        assert httpx.get(f"{server.url}/healthz").status_code == 200  # alive all the same
    finally:
        DRAIN.reset()
        server.stop()


# --- doctor -----------------------------------------------------------------------------


def _models(*ids: str) -> JSONReply:
    return JSONReply({"object": "list", "data": [{"id": i, "object": "model"} for i in ids]})


def test_doctor_reports_what_works_and_what_does_not(
    mock_upstream_factory: Any, redis_url: str, tmp_path: Path
) -> None:
    good, refused = mock_upstream_factory(), mock_upstream_factory()
    good.enqueue(_models("upstream-model", "other"))
    refused.enqueue(ErrorReply(401, "Incorrect API key provided: sk-wrong-secret-key"))
    config = {
        "auth": "none",
        "store": redis_url,
        "providers": {
            "good": {"kind": "openai", "base_url": good.url, "api_key": "sk-good-secret"},
            "refused": {
                "kind": "anthropic",
                "base_url": refused.url.removesuffix("/v1"),
                "api_key": "sk-wrong-secret-key",
            },
            "nowhere": {"kind": "openai", "base_url": "https://api.nonexistent.invalid/v1"},
            "sim": {"kind": "simulated"},
        },
        "models": {
            "m": {
                "deployments": [
                    {
                        "provider": p,
                        "model": "upstream-model",
                        "input_per_mtok": 1,
                        "output_per_mtok": 1,
                    }
                    for p in ("good", "refused", "nowhere", "sim")
                ]
            }
        },
    }
    result = run("doctor", "--config", write(tmp_path, config))
    assert result.returncode == 1, result.stdout + result.stderr
    rows = _rows(result.stdout)
    assert rows[("provider good", "dns")][0] == "ok"
    assert rows[("provider good", "credentials")][0] == "ok"
    assert "HTTP 200" in rows[("provider good", "credentials")][1]
    assert rows[("provider refused", "credentials")][0] == "fail"
    assert "the key was refused" in rows[("provider refused", "credentials")][1]
    assert rows[("provider nowhere", "dns")][0] == "fail"
    assert rows[("provider sim", "network")][0] == "skip"
    assert rows[("store", "reachable")][0] == "ok"
    assert "single Redis" in rows[("store", "reachable")][1]
    assert "sk-wrong-secret-key" not in result.stdout + result.stderr
    assert "sk-good-secret" not in result.stdout + result.stderr
    # the calls carried each vendor's own credentials
    assert good.requests[0].path == "/v1/models"
    assert good.requests[0].headers["authorization"] == "Bearer sk-good-secret"
    assert refused.requests[0].path == "/v1/models"
    assert refused.requests[0].headers["x-api-key"] == "sk-wrong-secret-key"
    assert "anthropic-version" in refused.requests[0].headers
    assert "7 checks, 2 failed" in result.stdout


def test_doctor_says_when_the_store_is_unreachable(
    mock_upstream: MockUpstream, tmp_path: Path
) -> None:
    mock_upstream.enqueue(_models("upstream-model-id"))
    config = {**upstream_config(mock_upstream.url), "store": f"redis://127.0.0.1:{free_port()}/0"}
    result = run("doctor", "--config", write(tmp_path, config))
    assert result.returncode == 1
    rows = _rows(result.stdout)
    assert rows[("provider mock", "credentials")][0] == "ok"
    assert rows[("store", "reachable")][0] == "fail"
    assert "ConnectionError" in rows[("store", "reachable")][1]


def test_doctor_warns_about_a_model_the_provider_does_not_list(
    mock_upstream: MockUpstream, tmp_path: Path
) -> None:
    mock_upstream.enqueue(_models("something-else"))
    result = run("doctor", "--config", write(tmp_path, upstream_config(mock_upstream.url)))
    assert result.returncode == 0, result.stdout
    status, detail = _rows(result.stdout)[("provider mock", "credentials")]
    assert status == "warn"
    assert "not in its model list: upstream-model-id" in detail


def _rows(table: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(what, check) → (result, detail) from the printed table; folded cells are joined."""
    rows: dict[tuple[str, str], tuple[str, str]] = {}
    last: tuple[str, str] | None = None
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) != 4 or cells[0] == "what":
            continue
        if cells[0]:
            last = (cells[0], cells[1])
            rows[last] = (cells[2], cells[3])
        elif last is not None:
            rows[last] = (rows[last][0], rows[last][1] + " " + cells[3])
    return rows


@pytest.fixture(autouse=True)
def _never_draining() -> None:
    DRAIN.reset()
