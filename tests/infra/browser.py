"""Debian's Chromium, driven by Playwright, for the tests that look at pages (test_page.py,
test_docs.py): the ``chromium`` fixture (import it into the test module). Playwright's own
browser download cannot work here: the browser is Debian's package `chromium`, and a missing
package or browser fails the test (CI installs both)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright
except ImportError as exc:  # reported by the `chromium` fixture, so other modules still run
    PLAYWRIGHT_MISSING: ImportError | None = exc
else:
    PLAYWRIGHT_MISSING = None

if TYPE_CHECKING:
    from playwright.sync_api import Browser

__all__ = ["TIMEOUT_MS", "PlaywrightError", "chromium", "expect", "origin"]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000
DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if PLAYWRIGHT_MISSING is not None:
        pytest.fail(
            f"Playwright for Python is missing ({PLAYWRIGHT_MISSING}):"
            " pip install -r requirements-dev.txt",
            pytrace=False,
        )
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
