"""A real Chromium for the dashboard tests: Debian's, never one downloaded by a test tool.

The browser tests run when SIMPLEQUEUE_TEST_BROWSER=1 (CI sets it), and then a missing Chromium
fails them; otherwise they skip, saying how to run them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Package scope, not session: Playwright's sync API keeps an asyncio loop running on the main
# thread while it is open, and every test after it that runs a loop of its own would fail.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if os.environ.get("SIMPLEQUEUE_TEST_BROWSER") != "1":
        pytest.skip("set SIMPLEQUEUE_TEST_BROWSER=1 to run browser tests")
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("SIMPLEQUEUE_TEST_BROWSER=1 but there is no `chromium` on PATH")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context per test: no cookies, storage or permissions carried over.

    Any uncaught error in the page's script fails the test that caused it.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"the dashboard's script failed: {errors}"
