"""Imports point one way: gateway → routing → providers (DESIGN.md, STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# what each package may not import
FORBIDDEN = {
    "providers": {"gateway", "routing", "litestar", "uvicorn", "granian", "redis"},
    "routing": {"gateway", "litestar", "uvicorn", "granian"},
}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_upward(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules found in {package}/"
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_the_http_client_module_imports_aiohttp() -> None:
    users = [
        str(path.relative_to(ROOT))
        for package in ("gateway", "routing", "providers")
        for path in (ROOT / package).rglob("*.py")
        if "aiohttp" in imported_roots(path)
    ]
    assert users == ["providers/http_client.py"]
