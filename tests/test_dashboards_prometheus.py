"""The dashboards and alert rules in deploy/, against a real Prometheus scraping a real
gateway under traffic: every query of every panel returns data, every rule's expression
parses and evaluates, `promtool` accepts the rules and their unit tests pass, and the
dashboard JSON is what the SDK code builds and reads back through Grafana's models."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from tests.dashboard_traffic import drive, gateway_config
from tests.gateway_server import GatewayServer
from tests.prometheus_server import PrometheusServer, finite, prometheus_binary
from tests.routing_setup import wait_until

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "deploy" / "grafana"
RULES = ROOT / "deploy" / "prometheus" / "switchboard-rules.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "switchboard-rules.test.yml"
DASHBOARD_FILES = sorted(GRAFANA.glob("*.json"))
# what Grafana puts in place of the dashboards' variables: "All", and a rate window that
# holds the whole test's traffic
VARIABLES = {"$__rate_interval": "1m", "$model": ".*", "$provider": ".*", "$team": ".*"}
VARIABLES["$key"] = ".*"


def builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dashboards", GRAFANA / "dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def expressions(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL with the variables filled in) for every target."""
    for panel in panels(board):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            assert "$" not in expr, f"{panel['title']}: unknown variable in {expr}"
            yield panel["title"], expr


def rule_expressions() -> list[tuple[str, str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [
        (rule.get("alert") or rule["record"], rule["expr"])
        for group in groups
        for rule in group["rules"]
    ]


# --- the files themselves -------------------------------------------------------------


def test_the_dashboard_files_are_what_the_code_builds() -> None:
    """Edit deploy/grafana/dashboards.py, then run it: the JSON follows."""
    module = builder()
    assert {p.name for p in DASHBOARD_FILES} == set(module.DASHBOARDS)
    for path in DASHBOARD_FILES:
        assert path.read_text() == module.render(module.DASHBOARDS[path.name]()), path.name


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_dashboards_read_back_through_grafanas_models(path: Path) -> None:
    """Grafana's Foundation SDK models are generated from Grafana's dashboard schema: a
    field they do not know (at the dashboard, panel, options, field config or query
    level) would be lost on the way back, and so fail here."""
    register_default_plugins()  # panel options and Prometheus queries get their models
    board = json.loads(path.read_text())
    again = json.loads(json.dumps(Dashboard.from_json(board).to_json(), default=_to_json))
    assert not lost(board, again)  # the models may add their defaults, never drop a field
    titles = [p["title"] for p in panels(board)]
    assert len(titles) == len(set(titles)), "panel titles repeat"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels(board):
        assert panel["description"], f"{panel['title']}: say what the panel shows"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def _to_json(value: Any) -> Any:
    return value.to_json()


def lost(original: Any, again: Any, path: str = "") -> list[str]:
    """Where `again` lacks or changed something `original` has."""
    if isinstance(original, dict) and isinstance(again, dict):
        return [
            where
            for key, value in original.items()
            for where in (
                lost(value, again[key], f"{path}/{key}") if key in again else [f"{path}/{key}"]
            )
        ]
    if isinstance(original, list) and isinstance(again, list) and len(original) == len(again):
        return [
            w
            for i, pair in enumerate(zip(original, again, strict=True))
            for w in lost(*pair, f"{path}[{i}]")
        ]
    return [] if original == again else [path or "/"]


def test_promtool_checks_the_rules_and_runs_their_unit_tests() -> None:
    promtool = str(Path(prometheus_binary()).with_name("promtool"))
    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", RULE_TESTS.name],
        cwd=RULE_TESTS.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_alert_says_what_to_do() -> None:
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                annotations = rule["annotations"]
                assert annotations["summary"] and "What to do" in annotations["description"]
                assert rule["labels"]["severity"] in ("warning", "critical")


# --- against a real Prometheus --------------------------------------------------------


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A gateway with traffic of every kind, scraped every second until after the
    traffic ended."""
    gateway = GatewayServer(gateway_config()).start()
    folder = tmp_path_factory.mktemp("prometheus")
    target = gateway.url.removeprefix("http://")
    try:
        with PrometheusServer(folder, [target], [RULES]) as prometheus:
            wait_until(lambda: prometheus.scraped_since(time.time() - 0.5), timeout=60)
            seen = drive(gateway, seconds=12)
            assert seen["answered"] > 20 and seen["refused"] > 0, seen
            ended = time.time()
            wait_until(lambda: prometheus.scraped_since(ended + 0.5), timeout=30)
            yield prometheus
    finally:
        gateway.stop()


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda p: p.name)
def test_every_panel_returns_data(scraped: PrometheusServer, path: Path) -> None:
    board = json.loads(path.read_text())
    empty = []
    for title, expr in expressions(board):
        result = scraped.query(expr)  # raises if Prometheus cannot parse or run it
        if not any(finite(sample) for sample in result):
            empty.append(f"{title}: {expr}")
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_every_rule_evaluates_in_prometheus(scraped: PrometheusServer) -> None:
    for name, expr in rule_expressions():
        try:
            scraped.query(expr)
        except AssertionError as exc:  # Prometheus could not parse or run it
            raise AssertionError(f"rule {name}: {exc}") from None

    def evaluated() -> bool:
        groups = scraped.api("rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return len(rules) == len(rule_expressions()) and all(
            r["health"] == "ok" and r.get("lastEvaluation", "").startswith("20") for r in rules
        )

    wait_until(evaluated, timeout=30)
    # the SLO recording rules have data from the traffic (the alerts need not fire)
    misses = scraped.query("switchboard:slo_misses:ratio_rate5m")
    assert {sample["metric"]["slo"] for sample in misses} == {"duration", "ttft"}


def test_the_dashboards_show_routing_at_work(scraped: PrometheusServer) -> None:
    """A few panels, read for what a person would look for in them."""
    served = 'rate(switchboard_requests_total{outcome="success"}[1m])'
    share = scraped.query(
        f"sum by (model, provider) ({served}) / on (model) group_left sum by (model) ({served})"
    )
    by_model: dict[str, float] = {}
    for sample in share:
        model = sample["metric"]["model"]
        by_model[model] = by_model.get(model, 0.0) + float(sample["value"][1])
    assert by_model and all(abs(total - 1) < 1e-6 for total in by_model.values())
    fallbacks = scraped.query("sum(switchboard_fallbacks_total)")
    assert float(fallbacks[0]["value"][1]) > 0
    limited = scraped.query('sum(switchboard_limit_rejections_total{key="limited"})')
    assert float(limited[0]["value"][1]) > 0
    use = scraped.query(
        'switchboard_budget_spent_usd{scope="team", name="search"} '
        '/ switchboard_budget_limit_usd{scope="team", name="search"}'
    )
    assert 0 < float(use[0]["value"][1]) < 1


def test_queries_use_only_metrics_the_gateway_exposes(scraped: PrometheusServer) -> None:
    """A misspelt metric name returns no data rather than an error: every name the
    dashboards and rules mention must be one Prometheus has scraped."""
    known = set(scraped.api("label/__name__/values"))
    names: set[str] = set()
    texts = [
        expr for path in DASHBOARD_FILES for _, expr in expressions(json.loads(path.read_text()))
    ]
    texts += [expr for _, expr in rule_expressions()]
    for text in texts:
        names.update(re.findall(r"\bswitchboard_[a-z_]+\b", text))
    assert names <= known, sorted(names - known)
