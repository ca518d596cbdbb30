"""A real headless Chromium for the browser tests, driven by Selenium.

The browser is Debian's chromium and chromedriver (`infra/install-browser.sh`
installs them). Selenium is given both paths, so Selenium Manager never
downloads a browser or driver of its own. The running system comes from the
`live_stack` fixture in tests/conftest.py, and its `api` fixture leaves no
run active before or after a test.

The window is one fixed size, so the screenshots the tests take for the
README (`screenshot`, into docs/screenshots/) come out the same size each run.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webelement import WebElement

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW = (1280, 900)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    # Keep each phase's report on the test item, so the browser fixture can tell
    # in its teardown whether the test failed and leave evidence behind.
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def browser(request: pytest.FixtureRequest, tmp_path: Path):
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not os.access(binary, os.X_OK):
            pytest.fail(f"{binary} is missing; run infra/install-browser.sh first")

    profile = tempfile.TemporaryDirectory(prefix="pacer-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile.name}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})

    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        call_report = getattr(request.node, "report_call", None)
        if call_report is not None and call_report.failed:
            _save_evidence(driver, tmp_path)
        driver.quit()
        profile.cleanup()


@pytest.fixture
def screenshot(browser: webdriver.Chrome):
    """`screenshot(page)` saves what the browser shows as docs/screenshots/<page>.png, the README's picture of that
    page; `screenshot(page, element)` saves one element (a card). Call it once the page shows real data. A checkout
    that cannot be written (read-only) gets none, and its test goes on: the pictures are documentation, not a check.
    """
    def save(page: str, element: WebElement | None = None) -> None:
        try:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            png = element.screenshot_as_png if element is not None else browser.get_screenshot_as_png()
            (SCREENSHOTS / f"{page}.png").write_bytes(png)
        except OSError as exc:
            print(f"no screenshot of {page}: {exc}")

    return save


def _save_evidence(driver: webdriver.Chrome, folder: Path) -> None:
    driver.save_screenshot(str(folder / "failure.png"))
    (folder / "failure.html").write_text(driver.page_source)
    (folder / "console.json").write_text(json.dumps(driver.get_log("browser"), indent=2))
    print(f"browser evidence saved in {folder}")

