"""docs/config-reference.md is generated from the config's schema and must not drift."""

from __future__ import annotations

from pathlib import Path

from gateway.config_reference import render

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "config-reference.md"


def test_the_reference_matches_the_code() -> None:
    assert REFERENCE.read_text() == render(), (
        "docs/config-reference.md is out of date with the config's Structs: "
        "run `make config-reference` and commit the result"
    )


def test_every_section_and_field_of_the_config_is_in_it() -> None:
    text = render()
    for heading in (
        "## Top level",
        "## `routing`",
        "## `routing.circuit`",
        "## `limits`",
        "## `models.<name>`",
        "## `models.<name>.deployments[]`",
        "## `providers.<name>` with `kind: openai`",
        "## `providers.<name>` with `kind: bedrock`",
    ):
        assert heading in text
    assert "| `max_request_bytes` | integer (≥ 1024) | `20000000` | Larger bodies get 413" in text
    assert '| `auth` | `"none"` or [AuthConfig](#struct-authconfig) | required |' in text
    # a field without Meta(description=...) takes its line's trailing comment
    assert (
        "| `drop_params` | list of string or null | `null` | replaces the preset's list |" in text
    )
