"""The control page, in a real browser, against the whole running system."""
from __future__ import annotations

import re

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.e2e

RUN_DEADLINE_S = 60
PAGE_DEADLINE_S = 15


def element(browser: WebDriver, element_id: str):
    return browser.find_element(By.ID, element_id)


def shown_count(browser: WebDriver, element_id: str) -> int | None:
    """The whole number an element shows, or None while it shows none."""
    digits = element(browser, element_id).text.replace(",", "").strip()
    return int(digits) if digits.isdigit() else None


def shown_state(browser: WebDriver) -> str:
    return element(browser, "state").text.strip().lower()


def shown_progress(browser: WebDriver) -> float:
    fraction = element(browser, "progress").get_attribute("data-progress")
    return float(fraction) if fraction else 0.0


def fill(browser: WebDriver, **values) -> None:
    for field_id, value in values.items():
        field = element(browser, field_id)
        field.clear()
        if value is not None:
            field.send_keys(str(value))


def click_when_enabled(browser: WebDriver, button_id: str) -> None:
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: element(b, button_id).is_enabled(), f"#{button_id} never became enabled"
    )
    element(browser, button_id).click()


def open_page(browser: WebDriver, live_stack) -> None:
    browser.get(live_stack.frontend_url)
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: shown_state(b) != "unknown", "the page never showed a status from the API"
    )


def api_status(api) -> dict:
    response = api.get(f"{api.base_url}/api/status", timeout=10)
    response.raise_for_status()
    return response.json()


def test_starting_a_run_on_the_page_shows_progress_moving(browser, live_stack, api, screenshot):
    open_page(browser, live_stack)
    previous_run = element(browser, "run-id").text

    fill(browser, x=3000, y=1, total=60)
    click_when_enabled(browser, "start")

    wait = WebDriverWait(browser, RUN_DEADLINE_S, poll_frequency=0.2)
    wait.until(lambda b: element(b, "run-id").text not in ("", "—", previous_run),
               "the page never showed the new run")
    wait.until(lambda b: (shown_count(b, "processed") or 0) > 0 and shown_progress(b) > 0,
               "processed and the progress bar never moved")
    wait.until(lambda b: shown_state(b) == "completed" or (shown_count(b, "processed") or 0) >= 60,
               "the run never finished its 60 jobs")

    processed = shown_count(browser, "processed")
    assert shown_state(browser) == "completed" or processed >= 60
    assert processed > 0
    assert shown_progress(browser) > 0
    screenshot("run")


def test_a_validation_error_from_the_api_is_shown_next_to_the_field_and_no_run_starts(
    browser, live_stack, api
):
    open_page(browser, live_stack)
    run_before = api_status(api)["run_id"]

    fill(browser, x=10, y=0, total=None)
    click_when_enabled(browser, "start")

    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: element(b, "error").is_displayed(), "no error was shown"
    )
    assert re.search(r"\by\b", element(browser, "error").text), element(browser, "error").text
    assert element(browser, "y-error").is_displayed()
    assert element(browser, "y-error").text.strip()
    assert element(browser, "y").get_attribute("aria-invalid") == "true"

    status = api_status(api)
    assert status["state"] != "running"
    assert status["run_id"] == run_before
    assert shown_state(browser) != "running"


def test_update_rate_and_stop_change_the_running_run_from_the_page(browser, live_stack, api):
    open_page(browser, live_stack)

    fill(browser, x=2, y=1, total=None)
    click_when_enabled(browser, "start")
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: shown_state(b) == "running", "the run never showed as running"
    )
    configured_before = element(browser, "configured").text

    fill(browser, x=30)  # 2 jobs/min becomes 30 jobs/min
    click_when_enabled(browser, "update")
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: element(b, "configured").text != configured_before, "#configured never changed"
    )
    assert float(element(browser, "configured").get_attribute("data-per-min")) == pytest.approx(30.0)
    assert api_status(api)["configured_per_min"] == pytest.approx(30.0)

    click_when_enabled(browser, "stop")
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: shown_state(b) == "stopped", "the run never showed as stopped"
    )
    assert api_status(api)["state"] == "stopped"
    assert not element(browser, "stop").is_enabled()
    assert not element(browser, "update").is_enabled()


ADMIN_TOKEN = "local-admin-token"  # the local stage's PACER_ADMIN_TOKEN


def shown_worker_states(browser: WebDriver) -> list[str]:
    rows = browser.find_elements(By.CSS_SELECTOR, "#workers tr[data-worker-id]")
    return [row.get_attribute("data-state") for row in rows]


@pytest.fixture
def restore_concurrency(api):
    """Put the stack's worker concurrency back after the test, for the tests that share the stack."""
    before = api.get(f"{api.base_url}/api/workers", timeout=10)
    yield
    if before.ok:
        api.put(f"{api.base_url}/api/workers", json={"concurrency": before.json()["concurrency"]},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)


def test_the_page_lists_the_workers_and_changes_their_concurrency(browser, live_stack, api, restore_concurrency):
    open_page(browser, live_stack)
    fill(browser, x=3000, y=1, total=100)
    click_when_enabled(browser, "start")

    WebDriverWait(browser, RUN_DEADLINE_S, poll_frequency=0.2).until(
        lambda b: any(state in ("idle", "busy") for state in shown_worker_states(b)),
        "no worker row showed as idle or busy",
    )
    up = shown_count(browser, "workers-up")
    assert up is not None and up >= 1
    assert up == sum(state in ("idle", "busy") for state in shown_worker_states(browser))
    assert shown_count(browser, "workers-down") == shown_worker_states(browser).count("down")

    fill(browser, **{"admin-token": ADMIN_TOKEN, "concurrency": 3})
    click_when_enabled(browser, "set-concurrency")
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: shown_count(b, "concurrency-desired") == 3, "#concurrency-desired never showed 3"
    )
    assert not element(browser, "workers-error").is_displayed()
    assert api.get(f"{api.base_url}/api/workers", timeout=10).json()["concurrency"] == 3

    browser.refresh()  # the token is remembered across a reload
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: shown_count(b, "concurrency-desired") == 3, "the reloaded page never showed concurrency 3"
    )
    assert element(browser, "admin-token").get_attribute("value") == ADMIN_TOKEN

    fill(browser, **{"admin-token": "not-the-admin-token", "concurrency": 4})
    click_when_enabled(browser, "set-concurrency")
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: element(b, "workers-error").is_displayed(), "#workers-error never showed"
    )
    rejected = api.put(f"{api.base_url}/api/workers", json={"concurrency": 4},
                       headers={"Authorization": "Bearer not-the-admin-token"}, timeout=10)
    assert rejected.status_code == 403
    assert element(browser, "workers-error").get_attribute("data-status") == "403"
    assert "403" in element(browser, "workers-error").text
    assert rejected.json()["message"] in element(browser, "workers-error").text
    assert shown_count(browser, "concurrency-desired") == 3
    assert api.get(f"{api.base_url}/api/workers", timeout=10).json()["concurrency"] == 3

    if api_status(api)["state"] == "running":
        stopped = api.post(f"{api.base_url}/api/stop", timeout=10)
        # the 100 jobs may finish between the read and the stop; then the stop is refused as completed
        assert stopped.status_code == 200 or (stopped.status_code == 409 and "completed" in stopped.json()["message"])
    assert api_status(api)["state"] != "running"
