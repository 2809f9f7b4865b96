"""The screenshots in docs/img/ (`make screenshots`), taken in headless Chromium:

- the status page of a gateway under traffic (its mock upstreams and the SDK traffic of
  tests/ui_traffic.py, as the status page's test runs them);
- each Grafana dashboard of deploy/grafana, as our rendering of its panels
  (tests/dashboard_render.py) with the answers of a real Prometheus that scraped a gateway
  under the dashboards test's traffic (tests/dashboard_traffic.py).

    python -m tests.screenshots [docs/img] [--seconds 60] [--only ui|dashboards]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from playwright.sync_api import Browser

from tests import dashboard_traffic
from tests.browser import chromium
from tests.dashboard_render import page as dashboard_page
from tests.gateway_server import GatewayServer
from tests.prometheus_server import PrometheusServer
from tests.routing_setup import wait_until
from tests.ui_traffic import ADMIN_KEY, Traffic, gateway_config, mock_upstreams

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = sorted((ROOT / "deploy" / "grafana").glob("*.json"))
RULES = ROOT / "deploy" / "prometheus" / "switchboard-rules.yml"

VIEWPORT = {"width": 1400, "height": 900}


def status_page(browser: Browser, folder: Path, seconds: float) -> list[Path]:
    shots = [folder / "ui-admin-key.png", folder / "ui-status.png", folder / "ui-request.png"]
    with mock_upstreams() as mocks:
        gateway = GatewayServer(gateway_config({n: m.url for n, m in mocks.items()})).start()
        try:
            with Traffic(gateway):
                page = browser.new_page(viewport=VIEWPORT)
                page.set_default_timeout(30_000)
                page.goto(f"{gateway.url}/ui")
                page.locator("#auth").wait_for(state="visible")
                page.screenshot(path=shots[0])
                page.fill("#admin-key", ADMIN_KEY)
                page.click("#key-form button[type=submit]")
                page.locator("#status").wait_for(state="visible")
                time.sleep(seconds)  # traffic fills the chart and the tables meanwhile
                page.wait_for_function("Number(document.body.dataset.refreshes) >= 2")
                page.screenshot(path=shots[1], full_page=True)
                page.uncheck("#auto")
                page.wait_for_function("document.body.dataset.busy === '0'")
                tried = page.locator("#requests tbody tr", has=page.locator("td.tries:not(:empty)"))
                tried.first.click()
                page.wait_for_function(
                    "document.querySelector('#generation-json').textContent.startsWith('{')"
                )
                page.locator("#generation").scroll_into_view_if_needed()
                page.locator("#recent").screenshot(path=shots[2])
                page.close()
        finally:
            gateway.stop()
    return shots


def dashboards(browser: Browser, folder: Path, seconds: float) -> list[Path]:
    shots = []
    gateway = GatewayServer(dashboard_traffic.gateway_config()).start()
    try:
        with tempfile.TemporaryDirectory() as data:
            target = gateway.url.removeprefix("http://")
            with PrometheusServer(Path(data), [target], [RULES]) as prometheus:
                wait_until(lambda: prometheus.scraped_since(time.time() - 0.5), timeout=60)
                start = time.time()
                dashboard_traffic.drive(gateway, seconds)
                end = time.time()
                wait_until(lambda: prometheus.scraped_since(end + 0.5), timeout=30)
                step = max((end - start) / 300, 1.0)
                for path in DASHBOARDS:
                    board = json.loads(path.read_text())
                    html = dashboard_page(prometheus, board, start, end, step)
                    page = browser.new_page(viewport={"width": 1600, "height": 900})
                    page.set_content(html)
                    page.wait_for_function("Number(document.body.dataset.drawn) > 0")
                    shot = folder / f"dashboard-{path.stem.removeprefix('switchboard-')}.png"
                    page.screenshot(path=shot, full_page=True)
                    page.close()
                    shots.append(shot)
    finally:
        gateway.stop()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default="docs/img", type=Path)
    parser.add_argument("--seconds", type=float, default=60, help="traffic before the shots")
    parser.add_argument("--only", choices=["ui", "dashboards"])
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        if args.only != "dashboards":
            for path in status_page(browser, args.folder, args.seconds):
                print(path)
        if args.only != "ui":
            # rates over 1 minute want a few minutes of traffic
            for path in dashboards(browser, args.folder, max(args.seconds * 2, 60)):
                print(path)


if __name__ == "__main__":
    main()
