"""The callers page (callers.html), in a real browser, against the whole running system."""
from __future__ import annotations

import time

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import wait_until
from tests.e2e.test_jobs_pages import page_url
from tests.integration.test_compute import fresh_numbers, submit_batch

pytestmark = pytest.mark.e2e

PAGE_DEADLINE_S = 15


def element(browser: WebDriver, element_id: str):
    return browser.find_element(By.ID, element_id)


def shown_rows(browser: WebDriver) -> dict[tuple[str, str], dict[str, str]]:
    """The table's rows, (caller, way in) -> each cell's data-value by its data-test, read in one script call."""
    rows = browser.execute_script(
        "return [...document.querySelectorAll('#callers-list tr[data-caller]')].map((row) =>"
        " [row.dataset.caller, row.dataset.origin, Object.fromEntries([...row.querySelectorAll('td[data-test]')]"
        "  .map((cell) => [cell.dataset.test, cell.dataset.value]))]);")
    return {(caller, origin): cells for caller, origin, cells in rows}


def shown_shares(browser: WebDriver) -> dict[str, float]:
    return {bar.get_attribute("data-caller"): float(bar.get_attribute("data-share"))
            for bar in browser.find_elements(By.CSS_SELECTOR, "#share-chart .share-bar")}


def api_rows(api, caller: str) -> dict[str, dict]:
    rows = api.get(f"{api.base_url}/api/callers", timeout=30).json()["callers"]
    return {row["origin"]: row for row in rows if row["caller"] == caller}


def test_the_callers_page_lists_two_callers_and_sets_a_weight_through_the_api(browser, live_stack, api, screenshot):
    stamp = time.time_ns()
    sizes = {f"page-big-{stamp}": 20, f"page-small-{stamp}": 5}
    for caller, size in sizes.items():
        submit_batch(api, caller, fresh_numbers(size))
    wait_until(lambda: all(api_rows(api, caller).get("compute", {}).get("done") == size
                           for caller, size in sizes.items()),
               timeout=120, interval=1, what="both callers' numbers done")

    browser.get(page_url(live_stack, "callers.html"))
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: all(shown_rows(b).get((caller, "compute"), {}).get("done") == str(size)
                      for caller, size in sizes.items()), "the page never listed both callers' done numbers")
    rows = shown_rows(browser)
    for caller in sizes:
        stored = api_rows(api, caller)["compute"]
        shown = rows[(caller, "compute")]
        assert (shown["weight"], shown["backlog"], shown["in-flight"], shown["limit"]) == ("1", "0", "0", "")
        assert float(shown["p95"]) == pytest.approx(stored["p95_wait_s"])
    # Both settled within the last minute, so both have a bar; the shares are of everyone's throughput.
    shares = WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: set(sizes) <= set(s := shown_shares(b)) and s, "the chart never showed both callers")
    assert shares[f"page-big-{stamp}"] > shares[f"page-small-{stamp}"] > 0 and sum(shares.values()) <= 1.0001

    # Clicking a caller fills the form; without the token the API refuses and nothing changes.
    small = f"page-small-{stamp}"
    browser.find_element(By.CSS_SELECTOR, f'#callers-list tr[data-caller="{small}"] [data-test="caller"]').click()
    assert (element(browser, "weight-caller").get_attribute("value"),
            element(browser, "weight-value").get_attribute("value")) == (small, "1")
    element(browser, "admin-token").clear()
    element(browser, "weight-value").clear()
    element(browser, "weight-value").send_keys("4")
    element(browser, "set-weight").click()
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: element(b, "weight-error").get_attribute("data-status") == "401", "the page never showed the 401")
    assert element(browser, "admin-token").get_attribute("aria-invalid") == "true"
    assert api_rows(api, small)["compute"]["weight"] == 1.0

    element(browser, "admin-token").send_keys("local-admin-token")
    element(browser, "set-weight").click()
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: element(b, "weight-message").is_displayed(), "the page never confirmed the weight")
    assert element(browser, "weight-message").get_attribute("data-weight") == "4"
    assert not element(browser, "weight-error").is_displayed()
    # The API has it, for the caller in both ways in, and the next poll shows it.
    assert {origin: row["weight"] for origin, row in api_rows(api, small).items()} == {"compute": 4.0, "typed": 4.0}
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: shown_rows(b).get((small, "typed"), {}).get("weight") == "4", "the table never showed the weight")
    assert shown_rows(browser)[(small, "compute")]["weight"] == "4"

    # A rate limit on the caller's typed jobs, set from the same form, shows on its typed row; empty removes it.
    element(browser, "limit-value").send_keys("120")
    element(browser, "set-limit").click()
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: element(b, "weight-message").get_attribute("data-limit") == "120", "the page never confirmed the limit")
    limits = api.get(f"{api.base_url}/api/jobs/limits", timeout=10).json()["limits"]
    assert {"type": None, "caller": small, "per_minute": 120.0} in limits
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: shown_rows(b).get((small, "typed"), {}).get("limit") == "120", "the table never showed the limit")
    screenshot("callers")
    element(browser, "limit-value").clear()
    element(browser, "set-limit").click()
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: element(b, "weight-message").get_attribute("data-limit") == "null", "the limit was never removed")
    assert all(limit["caller"] != small for limit in api.get(f"{api.base_url}/api/jobs/limits", timeout=10).json()["limits"])
