from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gateway.config import EMBEDDED_CONFIG, AuthConfig, ConfigError, load_config, parse_config
from gateway.services import Services
from providers.config import OpenAIConfig, SimulatedConfig

ROOT = Path(__file__).resolve().parent.parent

VALID: dict[str, Any] = {
    "auth": "none",
    "providers": {
        "groq": {"kind": "openai", "base_url": "https://api.groq.com/openai/v1", "api_key": "k"},
        "together": {"kind": "openai", "base_url": "https://api.together.xyz/v1"},
    },
    "models": {
        "llama-3.3-70b": {
            "deployments": [
                {"provider": "groq", "model": "llama-3.3-70b-versatile", "input_per_mtok": 0.59},
                {"provider": "together", "model": "meta-llama/Llama-3.3-70B-Instruct-Turbo"},
            ]
        }
    },
}


def broken(path: str, value: Any) -> dict[str, Any]:
    """VALID with one field replaced; `path` is split on `/`, list indices as numbers."""
    document = copy.deepcopy(VALID)
    *parents, last = path.split("/")
    node: Any = document
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return document


def test_valid_config_decodes_to_typed_structs() -> None:
    config = parse_config(VALID)
    assert isinstance(config.providers["groq"], OpenAIConfig)
    assert config.models["llama-3.3-70b"].deployments[1].provider == "together"
    assert config.routing.strategy == "balanced"
    assert config.limits.max_request_bytes == 20_000_000


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            broken("models/llama-3.3-70b/deployments/1/provider", "togther"),
            "models.llama-3.3-70b.deployments[1].provider: unknown provider 'togther'",
        ),
        (
            broken("models/llama-3.3-70b/deployments/0/input_per_mtok", -1),
            "models.llama-3.3-70b.deployments[0].input_per_mtok: Expected `float` >= 0.0",
        ),
        (broken("providers/groq/kind", "openia"), "providers.groq.kind: Invalid value 'openia'"),
        (
            broken("providers/groq/base_url", "api.groq.com"),
            "providers.groq.base_url: Expected `str` matching regex",
        ),
        (broken("providers/groq/timeout", 0), "providers.groq.timeout: Expected `float` > 0.0"),
        (broken("providers/groq/tiemout", 3), "providers.groq: Object contains unknown field"),
        (broken("routing", {"strategy": "fast"}), "routing.strategy: Invalid enum value 'fast'"),
        (broken("store", "mongodb://x"), "store: Expected `str` matching regex"),
        (
            broken("routing", {"retries": {"attempts": 0}}),
            "routing.retries.attempts: Expected `int` >= 1",
        ),
        (
            broken("routing", {"circuit": {"cooldwn": 3}}),
            "routing.circuit: Object contains unknown field `cooldwn`",
        ),
        (
            broken("routing", {"metrics": {"refresh": 5}}),
            "routing.metrics.refresh: Expected `float` <= 1.0",
        ),
        (
            broken("routing", {"exploration": {"share": 1.5}}),
            "routing.exploration.share: Expected `float` <= 1.0",
        ),
        (broken("admin", {"key_sha256": "x"}), "admin.key_sha256: Expected `str` matching regex"),
        (
            broken("limits", {"max_request_bytes": "big"}),
            "limits.max_request_bytes: Expected `int`",
        ),
        (broken("auth", "open"), "auth: Invalid enum value 'open'"),
        (
            broken("auth", {"keys": [{"name": "a", "key_sha256": "plain-key"}]}),
            "auth.keys[0].key_sha256: Expected `str` matching regex",
        ),
        ({"providers": {}}, "(top level): Object missing required field `auth`"),
        ({**VALID, "modles": {}}, "(top level): Object contains unknown field `modles`"),
        (broken("models/llama-3.3-70b/deployments", []), "models.llama-3.3-70b.deployments: "),
    ],
)
def test_errors_name_the_field_path_and_the_reason(document: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(document)
    assert str(raised.value).startswith(expected)


def test_environment_variables_are_interpolated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_KEY", "gsk-123")
    config = parse_config(broken("providers/groq/api_key", "${GROQ_KEY}"))
    provider = config.providers["groq"]
    assert isinstance(provider, OpenAIConfig)
    assert provider.api_key == "gsk-123"


def test_a_missing_variable_is_named_with_where_it_was_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ConfigError) as raised:
        parse_config(broken("providers/groq/api_key", "Bearer ${NOT_SET_ANYWHERE}"))
    assert str(raised.value) == (
        "providers.groq.api_key: environment variable NOT_SET_ANYWHERE is not set"
    )


def test_provider_keys_stay_out_of_reprs() -> None:
    config = parse_config(broken("providers/groq/api_key", "gsk-very-secret"))
    assert "gsk-very-secret" not in repr(config.providers["groq"])
    assert "gsk-very-secret" not in repr(config)


def test_embedded_demo_config_is_valid_and_open_and_simulated() -> None:
    config = load_config(EMBEDDED_CONFIG)
    assert EMBEDDED_CONFIG == ROOT / "examples" / "demo.yaml"
    assert config.auth == "none"
    assert config.store == "memory://"
    assert config.providers
    assert all(isinstance(p, SimulatedConfig) for p in config.providers.values())
    by_price = {d.input_per_mtok for d in config.models["demo-llama"].deployments}
    assert len(config.models["demo-llama"].deployments) >= 3 and len(by_price) >= 3


def test_production_example_is_valid_with_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "GROQ_API_KEY", "TOGETHER_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.setenv(name, "sk-test")
    monkeypatch.setenv("SWITCHBOARD_TEAM_A_KEY_SHA256", "ab" * 32)
    monkeypatch.setenv("SWITCHBOARD_ADMIN_KEY_SHA256", "cd" * 32)
    config = load_config(ROOT / "examples" / "production.yaml")
    assert config.admin is not None and config.routing.retries.attempts == 2
    assert isinstance(config.auth, AuthConfig)
    assert config.store.startswith("redis://")
    assert {type(p).__name__ for p in config.providers.values()} == {
        "OpenAIConfig",
        "AnthropicConfig",
    }
    # every deployment is priced, from the config or the shipped catalogue
    services = Services(config)
    claude = services.models.models["claude-sonnet-4"][0]
    assert claude.prices.input_per_mtok > 0 and claude.capabilities.reasoning


def test_unreadable_and_non_yaml_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("auth: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(scalar)


def test_a_variable_can_fill_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_TIMEOUT", "12.5")
    config = parse_config(broken("providers/groq/timeout", "${GROQ_TIMEOUT}"))
    provider = config.providers["groq"]
    assert isinstance(provider, OpenAIConfig)
    assert provider.timeout == 12.5


def test_double_dollar_escapes_interpolation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LITERAL", raising=False)
    config = parse_config(broken("providers/groq/headers", {"x-template": "$${LITERAL}"}))
    provider = config.providers["groq"]
    assert isinstance(provider, OpenAIConfig)
    assert provider.headers == {"x-template": "${LITERAL}"}


def test_an_unusable_store_url_is_refused_at_start() -> None:
    """The scheme passes the pattern; what follows is checked when the store is built."""
    config = parse_config({"auth": "none", "store": "redis+sentinel://127.0.0.1:26379"})
    with pytest.raises(ConfigError) as raised:
        Services(config)
    assert str(raised.value).startswith("store: redis+sentinel:// needs /service_name")
