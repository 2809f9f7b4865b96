"""The status page at `/ui`, as a person sees it: headless Chromium (Debian's `chromium`,
driven by Playwright) against a real gateway serving traffic from the official SDK to mock
upstreams. The page asks for the admin key, then shows every deployment, a traffic chart
that has drawn, spend and budgets, and the last requests, each opening its record; its
numbers move between refreshes, and nothing goes to the browser's console as an error.

Without `chromium` the test is skipped, unless `SWITCHBOARD_REQUIRE_CHROMIUM` is set (CI
sets it, and `.ci/run` installs the package: there, a missing browser is a failure).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page

from tests.browser import chromium, chromium_binary
from tests.gateway_server import GatewayServer
from tests.mock_upstream import MockUpstream
from tests.ui_traffic import ADMIN_KEY, HELLO, KEYS, Traffic, gateway_config, mock_upstreams

if chromium_binary() is None:
    if os.environ.get("SWITCHBOARD_REQUIRE_CHROMIUM"):
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)

WAIT_MS = 30_000  # for anything the page must show: generous on a loaded machine
DEPLOYMENTS = 4  # in tests/ui_traffic.py's config
BUDGETS = 5  # gateway daily, search-prod daily, search daily and monthly, support daily


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, MockUpstream]]:
    with mock_upstreams() as mocks:
        yield mocks


@pytest.fixture(scope="module")
def gateway(upstreams: dict[str, MockUpstream]) -> Iterator[GatewayServer]:
    server = GatewayServer(gateway_config({n: m.url for n, m in upstreams.items()})).start()
    try:
        with Traffic(server):
            yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


class Console:
    """What the page wrote to the console as errors, and the exceptions it raised."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._message)
        page.on("pageerror", lambda exc: self.errors.append(f"exception: {exc}"))

    def _message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


def open_page(browser: Browser, url: str) -> tuple[Page, Console]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    console = Console(page)
    page.goto(f"{url}/ui")
    return page, console


def enter_key(page: Page, key: str) -> None:
    page.locator("#auth").wait_for(state="visible")
    page.fill("#admin-key", key)
    page.click("#key-form button[type=submit]")


def refreshes(page: Page) -> int:
    return int(page.evaluate("document.body.dataset.refreshes"))


def coloured_pixels(page: Page) -> int:
    """Pixels of the chart's bars: saturated colour (the axes and grid are grey)."""
    return int(
        page.evaluate(
            """() => {
            const canvas = document.querySelector('#traffic-chart');
            const { width, height } = canvas;
            const data = canvas.getContext('2d').getImageData(0, 0, width, height).data;
            let count = 0;
            for (let i = 0; i < data.length; i += 4) {
              const hi = Math.max(data[i], data[i + 1], data[i + 2]);
              const lo = Math.min(data[i], data[i + 1], data[i + 2]);
              if (data[i + 3] > 200 && hi - lo > 60) count++;
            }
            return count;
        }"""
        )
    )


def test_the_apis_behind_the_page_need_the_admin_key(gateway: GatewayServer) -> None:
    for path in ("/v1/requests", "/v1/traffic", "/v1/budgets"):
        absent = httpx.get(f"{gateway.url}{path}", timeout=10)
        assert absent.status_code == 401, path
        assert absent.json()["error"]["type"] == "authentication_error"
        client_key = {"authorization": f"Bearer {KEYS['search-prod']}"}
        wrong = httpx.get(f"{gateway.url}{path}", headers=client_key, timeout=10)
        assert wrong.status_code == 401, path
        assert wrong.json()["error"]["message"] == "Incorrect admin key provided."
        admin = {"authorization": f"Bearer {ADMIN_KEY}"}
        assert httpx.get(f"{gateway.url}{path}", headers=admin, timeout=10).status_code == 200
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    bad_limit = httpx.get(f"{gateway.url}/v1/requests?limit=0", headers=admin, timeout=10)
    assert bad_limit.status_code == 400
    assert bad_limit.json()["error"]["param"] == "limit"
    # the admin key sees every deployment on the scoreboard
    board = httpx.get(f"{gateway.url}/v1/providers", headers=admin, timeout=10).json()
    assert len(board["data"]) == DEPLOYMENTS


def test_the_page_is_the_packages_own_files(gateway: GatewayServer) -> None:
    root = httpx.get(f"{gateway.url}/", timeout=10)  # a browser at the bare address
    assert root.status_code == 302
    assert root.headers["location"] == "/ui"
    page = httpx.get(f"{gateway.url}/ui", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from another host
    script = httpx.get(f"{gateway.url}/ui/static/app.js", timeout=10)
    assert script.headers["content-type"].startswith("text/javascript")
    missing = httpx.get(f"{gateway.url}/ui/static/nothing.js", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_url"


def test_the_page_asks_for_the_admin_key(gateway: GatewayServer, browser: Browser) -> None:
    page, console = open_page(browser, gateway.url)
    page.locator("#auth").wait_for(state="visible")
    assert "needs its admin key" in page.text_content("#auth-message")
    assert page.locator("#status").is_hidden()

    enter_key(page, KEYS["search-prod"])  # a client key is not the admin key
    page.wait_for_function(
        "document.querySelector('#auth-message').textContent.includes('refused')"
    )
    assert "Incorrect admin key provided." in page.text_content("#auth-message")
    assert page.evaluate("sessionStorage.getItem('switchboard.adminKey')") is None

    enter_key(page, ADMIN_KEY)
    page.locator("#status").wait_for(state="visible")
    assert page.locator("#auth").is_hidden()
    assert page.evaluate("sessionStorage.getItem('switchboard.adminKey')") == ADMIN_KEY
    assert ADMIN_KEY not in page.url
    # the refusals were the only errors: the browser notes each 401 it was answered
    assert console.errors, "the refused key's answers should be in the console"
    assert all("status of 401" in error for error in console.errors), console.errors
    page.close()


def wait_for_rows(page: Page, table: str, at_least: int) -> None:
    page.wait_for_function(
        "([table, n]) => document.querySelectorAll(`${table} tbody tr`).length >= n",
        arg=[table, at_least],
    )


def test_the_page_under_traffic(gateway: GatewayServer, browser: Browser) -> None:
    page, console = open_page(browser, gateway.url)
    enter_key(page, ADMIN_KEY)
    page.locator("#status").wait_for(state="visible")
    # the key is entered once: the tab keeps it, and asking for it was the last 401
    console.errors.clear()
    page.reload()
    page.locator("#status").wait_for(state="visible")
    assert page.locator("#auth").is_hidden()

    # every deployment, healthy, with prices
    wait_for_rows(page, "#scoreboard", DEPLOYMENTS)
    board = page.locator("#scoreboard tbody tr")
    assert board.count() == DEPLOYMENTS
    assert "healthy" in board.first.text_content()
    # spend today by team, key and model; every budget with its use
    wait_for_rows(page, "#spend-team", 2)
    wait_for_rows(page, "#spend-key", 3)
    wait_for_rows(page, "#spend-model", 2)
    wait_for_rows(page, "#budgets", BUDGETS)
    assert "% of $0.05" in page.locator("#spend-key tbody tr", has_text="search-prod").inner_text()
    # the last requests, some with failed tries (the flaky upstream) and a fallback
    wait_for_rows(page, "#requests", 10)
    page.wait_for_function("document.querySelector('#requests td.tries:not(:empty)') !== null")
    # the chart has drawn bars
    page.wait_for_function("Number(document.querySelector('#traffic-chart').dataset.slots) >= 1")
    assert coloured_pixels(page) > 500

    # it refreshes by itself, and what it shows moves with the traffic
    before = {
        "spend": page.text_content("#spend-line"),
        "requests": page.text_content("#requests tbody tr:first-child"),
        "seen": refreshes(page),
    }
    page.wait_for_function(
        """(before) => Number(document.body.dataset.refreshes) >= before.seen + 2
            && document.querySelector('#spend-line').textContent !== before.spend
            && document.querySelector('#requests tbody tr:first-child').textContent
               !== before.requests""",
        arg=before,
    )

    # pause the refresh, so the rows stay put, then open a request with a failed try
    page.uncheck("#auto")
    page.wait_for_function("document.body.dataset.busy === '0'")
    row = page.locator("#requests tbody tr", has=page.locator("td.tries:not(:empty)")).first
    request_id = row.get_attribute("data-id")
    assert request_id
    row.click()
    page.locator("#generation").wait_for(state="visible")
    page.wait_for_function("document.querySelector('#generation-json').textContent.startsWith('{')")
    shown: dict[str, Any] = page.evaluate(
        "JSON.parse(document.querySelector('#generation-json').textContent)"
    )
    record = httpx.get(
        f"{gateway.url}/v1/generations/{request_id}",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        timeout=10,
    ).json()
    assert shown == record
    assert record["attempts"][0]["provider"] == "flaky"
    assert record["attempts"][0]["status"] == 503
    summary = page.text_content("#generation-summary")
    assert "flaky 503 upstream_unavailable" in summary
    assert record["routing_metadata"]["provider"] in summary
    assert row.get_attribute("class") == "selected"

    assert console.errors == []
    page.close()


def test_an_open_gateway_shows_the_page_without_a_key(browser: Browser) -> None:
    with mock_upstreams() as mocks:
        config = gateway_config({n: m.url for n, m in mocks.items()}, auth=False)
        server = GatewayServer(config).start()
        try:
            sdk = server.sdk()
            for _ in range(3):
                sdk.chat.completions.create(model="chat-large", messages=HELLO, max_tokens=20)
            page, console = open_page(browser, server.url)
            page.locator("#status").wait_for(state="visible")
            wait_for_rows(page, "#requests", 3)
            assert page.locator("#auth").is_hidden()
            assert page.locator("#change-key").is_hidden()
            assert console.errors == []
            page.close()
        finally:
            server.stop()
