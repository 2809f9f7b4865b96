"""Headless Chromium through Playwright, for the status page's test and the screenshots.

Playwright's own browser download cannot work here (no internet beyond the package
registries), so it drives Debian's `chromium` (`.ci/run` installs it)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, sync_playwright


def chromium_binary() -> str | None:
    return os.environ.get("SWITCHBOARD_CHROMIUM") or shutil.which("chromium")


@contextmanager
def chromium() -> Iterator[Browser]:
    binary = chromium_binary()
    if binary is None:
        raise RuntimeError("needs Debian's chromium: apt-get install chromium (.ci/run does it)")
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
        browser = playwright.chromium.launch(
            executable_path=binary, headless=True, args=["--no-sandbox"]
        )
        try:
            yield browser
        finally:
            browser.close()
