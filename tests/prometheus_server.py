"""A real Prometheus (Debian's `prometheus` package) on a free loopback port, scraping the
given targets every second and evaluating the given rule files, with its data in a
temporary folder. `.ci/run` installs the package when it is missing."""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.redis_server import free_port

START_TIMEOUT = 60.0  # a cold start on a loaded machine


def prometheus_binary() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError(
            "these tests need Prometheus: apt-get install prometheus (.ci/run does it)"
        )
    return binary


class PrometheusServer:
    def __init__(self, folder: Path, targets: list[str], rule_files: list[Path]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._folder = folder
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": [
                {
                    "job_name": "switchboard",
                    "scrape_interval": "1s",
                    "scrape_timeout": "900ms",
                    "static_configs": [{"targets": targets}],
                }
            ],
        }
        self._config = folder / "prometheus.yml"
        self._config.write_text(yaml.safe_dump(config))
        self._log = folder / "prometheus.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrometheusServer:
        command = [
            prometheus_binary(),
            f"--config.file={self._config}",
            f"--storage.tsdb.path={self._folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self._log.read_text()}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus did not start: {self._log.read_text()}")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
            self._process = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the HTTP API ------------------------------------------------------------------

    def api(self, path: str, **params: Any) -> Any:
        """`data` of a successful answer; an error answer raises with Prometheus's text."""
        answer = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        body = answer.json()
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        data = self.api("query", **params)
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else []
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        data = self.api("query_range", query=expr, start=start, end=end, step=step)
        result: list[dict[str, Any]] = data["result"]
        return result

    def scraped_since(self, moment: float) -> bool:
        """Whether every target was scraped (successfully) after `moment` (epoch seconds)."""
        targets = self.api("targets")["activeTargets"]
        return bool(targets) and all(
            t["health"] == "up" and _epoch(t["lastScrape"]) > moment for t in targets
        )


def finite(sample: dict[str, Any]) -> bool:
    return math.isfinite(float(sample["value"][1]))


def _epoch(rfc3339: str) -> float:
    # Prometheus writes nanoseconds; Python's parser takes at most microseconds
    head, _, rest = rfc3339.partition(".")
    zone = rest[rest.find("Z") :] if "Z" in rest else rest[-6:]
    fraction = "".join(c for c in rest[: len(rest) - len(zone)] if c.isdigit())[:6]
    stamp = f"{head}.{fraction or '0'}{'+00:00' if zone == 'Z' else zone}"
    return datetime.fromisoformat(stamp).timestamp()
