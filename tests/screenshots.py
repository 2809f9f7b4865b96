"""The screenshots in docs/img/ (`make screenshots`): the status page of a gateway under
traffic, taken in headless Chromium.

    python -m tests.screenshots [docs/img] [--seconds 60]

Everything shown is real: the gateway, its mock upstreams and the SDK traffic of
tests/ui_traffic.py, as the status page's test runs them, for `--seconds` before the shot.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from playwright.sync_api import Browser

from tests.browser import chromium
from tests.gateway_server import GatewayServer
from tests.ui_traffic import ADMIN_KEY, Traffic, gateway_config, mock_upstreams

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default="docs/img", type=Path)
    parser.add_argument("--seconds", type=float, default=60, help="traffic before the shots")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        for path in status_page(browser, args.folder, args.seconds):
            print(path)


if __name__ == "__main__":
    main()
