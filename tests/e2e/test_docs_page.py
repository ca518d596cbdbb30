"""The API reference page (docs.html): vendored Swagger UI over the live API's own OpenAPI document."""
from __future__ import annotations

from urllib.parse import urlencode

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.e2e

PAGE_DEADLINE_S = 20


def page_url(live_stack, page: str) -> str:
    return f"http://127.0.0.1:{live_stack.frontend_port}/{page}?{urlencode({'api': live_stack.api_url})}"


def test_the_docs_page_renders_every_operation_of_the_live_document(browser, live_stack, screenshot):
    document = requests.get(f"{live_stack.api_url}/api/openapi.json", timeout=10).json()
    expected = {(method.upper(), path) for path, methods in document["paths"].items() for method in methods}
    browser.get(page_url(live_stack, "docs.html"))

    def operations(b):
        shown = set()
        for block in b.find_elements(By.CSS_SELECTOR, "#swagger-ui .opblock"):
            method = block.find_element(By.CSS_SELECTOR, ".opblock-summary-method").text.strip()
            path = block.find_element(By.CSS_SELECTOR, ".opblock-summary-path").get_attribute("data-path")
            shown.add((method, path))
        return shown if shown >= expected else False

    shown = WebDriverWait(browser, PAGE_DEADLINE_S).until(operations, "Swagger UI never showed every operation")
    assert shown == expected
    assert browser.find_element(By.ID, "docs-error").get_attribute("hidden") is not None
    assert browser.find_element(By.CSS_SELECTOR, "[data-test='openapi-link']").get_attribute("href") == \
        f"{live_stack.api_url}/api/openapi.json"
    # Loaded through common.js, so the header says the API answered, and nothing came from the network but it.
    assert browser.find_element(By.ID, "connection").get_attribute("data-connected") == "true"
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], errors
    screenshot("docs")


@pytest.mark.parametrize("page", ["index.html", "dashboard.html", "jobs.html", "job.html", "new.html", "dlq.html", "callers.html",
                                  "docs.html"])
def test_every_page_links_the_api_reference_from_its_header(browser, live_stack, page):
    browser.get(page_url(live_stack, page))
    link = WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "#site-nav [data-test='nav-docs']"), f"{page} has no API link")[0]
    assert link.text == "API" and link.get_attribute("href").startswith(
        f"http://127.0.0.1:{live_stack.frontend_port}/docs.html")
