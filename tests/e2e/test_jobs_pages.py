"""The job pages (new job, jobs list, job detail, dashboard), in a real browser, against the whole running system.

Jobs the tests need in a given state are made through the API: one scheduled
an hour ahead stays `pending` until a test cancels it (the backend keeps a
scheduled job pending until it is due).
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.conftest import wait_until

pytestmark = pytest.mark.e2e

PAGE_DEADLINE_S = 15
JOB_DEADLINE_S = 60
FINISHED = ("completed", "failed", "cancelled")
ADMIN_TOKEN = "local-admin-token"  # the local stage's PACER_ADMIN_TOKEN


# ---- helpers ----------------------------------------------------------------

def page_url(live_stack, page: str, **params) -> str:
    query = urlencode({**params, "api": live_stack.api_url})
    return f"http://127.0.0.1:{live_stack.frontend_port}/{page}?{query}"


def url_params(browser: WebDriver) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlparse(browser.current_url).query).items()}


def element(browser: WebDriver, element_id: str):
    return browser.find_element(By.ID, element_id)


def fill(browser: WebDriver, values: dict[str, str]) -> None:
    for field_id, value in values.items():
        field = element(browser, field_id)
        field.clear()
        field.send_keys(value)


def choose(browser: WebDriver, select_id: str, value: str) -> None:
    Select(element(browser, select_id)).select_by_value(value)


def unique(text: str) -> str:
    return f"{text} {uuid.uuid4().hex[:10]}"


def an_hour_from_now() -> str:
    return (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def create_job(api, subject: str, **fields) -> dict:
    body = {"type": "email", "payload": {"to": "ann@example.com", "subject": subject, "body": "Hello"}, **fields}
    response = api.post(f"{api.base_url}/api/jobs", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def stored_job(api, job_id: str) -> dict:
    response = api.get(f"{api.base_url}/api/jobs/{job_id}", timeout=10)
    response.raise_for_status()
    return response.json()


def wait_for_job_status(api, job_id: str, status: str) -> dict:
    return wait_until(lambda: (job := stored_job(api, job_id))["status"] == status and job,
                      timeout=JOB_DEADLINE_S, what=f"job {job_id} to be {status}")


def stats(api) -> dict:
    response = api.get(f"{api.base_url}/api/stats", timeout=10)
    response.raise_for_status()
    return response.json()


# The pages re-render while they poll, so lists are read in one script call, not element by element.

def listed_rows(browser: WebDriver) -> dict[str, str]:
    """The jobs the list shows: id -> status."""
    return browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#jobs-list tr[data-job-id]')]"
        ".map((row) => [row.dataset.jobId, row.dataset.status]));")


def listed_ids(browser: WebDriver) -> list[str]:
    """The ids of the jobs the list shows, in its order (a dict from the browser may come back reordered)."""
    return browser.execute_script(
        "return [...document.querySelectorAll('#jobs-list tr[data-job-id]')].map((row) => row.dataset.jobId);")


def list_shows(browser: WebDriver, **filters) -> bool:
    """Whether the list has finished loading the view with these API query parameters."""
    table = element(browser, "jobs-table")
    loaded = parse_qs(table.get_attribute("data-query") or "")
    return table.get_attribute("data-state") == "ready" and all(
        loaded.get(name) == [value] for name, value in filters.items())


def timeline_statuses(browser: WebDriver) -> list[str]:
    return browser.execute_script(
        "return [...document.querySelectorAll(\"#timeline [data-test='timeline-entry']\")]"
        ".map((entry) => entry.dataset.status);")


def shown_status(browser: WebDriver) -> str:
    return element(browser, "job-status").get_attribute("data-state")


def shown_figures(browser: WebDriver) -> dict[str, int | None]:
    """The dashboard's figures: element id -> the number it shows (None while it shows none)."""
    return browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('[data-value]')]"
        ".map((node) => [node.id, node.dataset.value === '' ? null : Number(node.dataset.value)]));")


def chart_points(browser: WebDriver) -> dict[str, int]:
    """How many minutes each series of the dashboard's chart draws."""
    return browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#trend-chart [data-series]')]"
        ".map((line) => [line.dataset.series, Number(line.dataset.count)]));")


@pytest.fixture
def pending_job(api):
    """An email job scheduled an hour ahead, so it stays pending; cancelled afterwards if it still is."""
    job = create_job(api, unique("Scheduled"), scheduled_for=an_hour_from_now())
    assert job["status"] == "pending"
    yield job
    api.delete(f"{api.base_url}/api/jobs/{job['id']}", timeout=10)


# ---- tests ------------------------------------------------------------------

def test_a_job_created_through_the_form_opens_its_page_and_appears_in_the_jobs_list(browser, live_stack, api,
                                                                                   screenshot):
    browser.get(live_stack.frontend_url)  # from the run page, through the nav every page shares
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "[data-test='nav-new']"), "the run page never showed the nav")
    browser.find_element(By.CSS_SELECTOR, "[data-test='nav-new']").click()
    WebDriverWait(browser, PAGE_DEADLINE_S).until(lambda b: urlparse(b.current_url).path.endswith("/new.html"))
    assert url_params(browser)["api"] == live_stack.api_url

    subject = unique("Made by the form")
    choose(browser, "type", "email")
    fill(browser, {"payload-to": "ann@example.com", "payload-subject": subject, "payload-body": "Hello from the form"})
    choose(browser, "priority", "4")
    screenshot("new")
    element(browser, "create-job").click()

    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: urlparse(b.current_url).path.endswith("/job.html")
        and element(b, "job").get_attribute("data-state") == "loaded",
        "the form never opened the new job's page")
    params = url_params(browser)
    assert params["api"] == live_stack.api_url
    job = stored_job(api, params["id"])
    assert (job["type"], job["priority"], job["payload"]["subject"]) == ("email", 4, subject)
    assert element(browser, "job-id").text == job["id"]

    browser.find_element(By.CSS_SELECTOR, "[data-test='nav-jobs']").click()
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: job["id"] in listed_rows(b), "the new job never appeared in the jobs list")
    row = browser.find_element(By.CSS_SELECTOR, f"#jobs-list tr[data-job-id='{job['id']}']")
    assert subject in row.text
    assert row.get_attribute("data-priority") == "4"
    screenshot("jobs")
    row.find_element(By.CSS_SELECTOR, "[data-test='job-link']").click()
    WebDriverWait(browser, PAGE_DEADLINE_S).until(lambda b: url_params(b).get("id") == job["id"])


def send_email_form(browser: WebDriver, live_stack, subject: str, key: str) -> None:
    browser.get(page_url(live_stack, "new.html"))
    fill(browser, {"payload-to": "ann@example.com", "payload-subject": subject, "payload-body": "Hello",
                   "idempotency-key": key})
    element(browser, "create-job").click()


def test_sending_the_form_twice_with_one_idempotency_key_opens_the_same_job_and_another_body_is_refused(
    browser, live_stack, api
):
    subject, key = unique("Sent twice"), unique("key").replace(" ", "-")
    opened = []
    for _ in range(2):
        send_email_form(browser, live_stack, subject, key)
        WebDriverWait(browser, PAGE_DEADLINE_S).until(
            lambda b: urlparse(b.current_url).path.endswith("/job.html"),
            "the form never opened the job's page (a browser refusing the Idempotency-Key header stays here)")
        opened.append(url_params(browser)["id"])
    assert opened[0] == opened[1]
    assert stored_job(api, opened[0])["payload"]["subject"] == subject

    another = unique("Another body")
    send_email_form(browser, live_stack, another, key)
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: element(b, "form-error").get_attribute("data-status") == "409",
        "the page never showed the API's 409 for the reused key")
    refused = api.post(f"{api.base_url}/api/jobs", headers={"Idempotency-Key": key}, timeout=10, json={
        "type": "email", "priority": 3, "payload": {"to": "ann@example.com", "subject": another, "body": "Hello"}})
    assert refused.status_code == 409
    assert element(browser, "idempotency-key-error").is_displayed()
    assert element(browser, "idempotency-key-error").text == refused.json()["message"]
    assert element(browser, "idempotency-key").get_attribute("aria-invalid") == "true"
    assert urlparse(browser.current_url).path.endswith("/new.html")


def test_a_bad_email_address_is_shown_next_to_the_to_field_and_no_job_is_created(browser, live_stack, api):
    total_before = stats(api)["total"]
    browser.get(page_url(live_stack, "new.html"))
    subject = unique("Never sent")
    fill(browser, {"payload-to": "not-an-email", "payload-subject": subject, "payload-body": "Hello"})
    element(browser, "create-job").click()

    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: element(b, "payload-to-error").is_displayed(), "no message showed next to the To field")
    # The message is the server's own, for the field it named.
    answer = api.post(f"{api.base_url}/api/jobs", timeout=10, json={
        "type": "email", "payload": {"to": "not-an-email", "subject": subject, "body": "Hello"}})
    assert answer.status_code == 400
    messages = [f["message"] for f in answer.json()["fields"] if f["field"].split(".")[-1] == "to"]
    assert messages, answer.json()
    assert element(browser, "payload-to-error").text == " ".join(messages)
    assert element(browser, "payload-to").get_attribute("aria-invalid") == "true"
    assert element(browser, "payload-subject").get_attribute("aria-invalid") is None
    assert not element(browser, "payload-subject-error").is_displayed()
    assert element(browser, "form-error").get_attribute("data-status") == "400"
    assert urlparse(browser.current_url).path.endswith("/new.html")
    assert stats(api)["total"] == total_before


def test_filtering_by_status_keeps_the_filter_in_the_url_and_a_reload_shows_it_again(
    browser, live_stack, api, pending_job
):
    finished = create_job(api, unique("Finishes"))
    wait_until(lambda: stored_job(api, finished["id"])["status"] in FINISHED, timeout=JOB_DEADLINE_S,
               what="the unscheduled job to finish")

    browser.get(page_url(live_stack, "jobs.html"))
    WebDriverWait(browser, PAGE_DEADLINE_S).until(lambda b: list_shows(b), "the list never loaded")
    choose(browser, "f-status", "pending")

    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: list_shows(b, status="pending"), "the list never showed the pending filter")
    assert url_params(browser) == {"status": "pending", "api": live_stack.api_url}
    rows = listed_rows(browser)
    assert pending_job["id"] in rows
    assert finished["id"] not in rows
    assert set(rows.values()) == {"pending"}

    browser.refresh()
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: list_shows(b, status="pending"), "the reloaded list never showed the pending filter")
    assert Select(element(browser, "f-status")).first_selected_option.get_attribute("value") == "pending"
    assert url_params(browser) == {"status": "pending", "api": live_stack.api_url}
    rows = listed_rows(browser)
    assert pending_job["id"] in rows
    assert set(rows.values()) == {"pending"}


def test_next_and_previous_walk_the_apis_cursor_and_the_url_carries_the_page(browser, live_stack, api):
    word = uuid.uuid4().hex[:12]  # searched for, so only this test's jobs are listed
    made = [create_job(api, f"Paged {word} {n}")["id"] for n in range(3)]
    browser.get(page_url(live_stack, "jobs.html", q=word, limit=2))
    WebDriverWait(browser, PAGE_DEADLINE_S).until(lambda b: list_shows(b, q=word, limit="2"), "the list never loaded")
    first_page = listed_ids(browser)
    assert first_page == [made[2], made[1]]  # newest first
    assert "cursor" not in url_params(browser)

    element(browser, "next-page").click()
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: "cursor" in url_params(b) and list_shows(b, next=url_params(b)["cursor"]),
        "Next never loaded the page its cursor names")
    assert listed_ids(browser) == [made[0]]
    assert not element(browser, "next-page").is_enabled()  # the API said there is no page after this one
    assert url_params(browser)["q"] == word

    browser.refresh()  # the URL alone brings the same page back
    WebDriverWait(browser, PAGE_DEADLINE_S).until(lambda b: list_shows(b, q=word), "the reloaded list never loaded")
    assert listed_ids(browser) == [made[0]]

    element(browser, "prev-page").click()
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: "cursor" not in url_params(b) and list_shows(b, q=word) and listed_ids(b) == first_page,
        "Previous never brought the first page back")


def test_a_job_page_shows_its_timeline_from_pending_through_running_to_completed(browser, live_stack, api,
                                                                                 screenshot):
    job = create_job(api, unique("Timeline"))
    browser.get(page_url(live_stack, "job.html", id=job["id"]))

    WebDriverWait(browser, JOB_DEADLINE_S, poll_frequency=0.3).until(
        lambda b: shown_status(b) in FINISHED, "the page never showed the job finished")
    assert shown_status(browser) == "completed"
    statuses = timeline_statuses(browser)
    assert statuses[0] == "pending"
    assert statuses[-1] == "completed"
    assert "running" in statuses
    assert statuses.index("pending") < statuses.index("running") < statuses.index("completed")
    stored = stored_job(api, job["id"])
    assert statuses == [entry["status"] for entry in stored["timeline"]]
    running = browser.find_element(By.CSS_SELECTOR, "#timeline [data-status='running']")
    assert "attempt 1" in running.text
    assert f"worker {stored['timeline'][statuses.index('running')]['worker']}" in running.text
    assert not element(browser, "cancel-job").is_displayed()
    assert not element(browser, "retry-job").is_displayed()
    screenshot("job")

    # The whole job as JSON, folded until asked for.
    assert not element(browser, "job-json-text").is_displayed()
    browser.find_element(By.CSS_SELECTOR, "#job-json summary").click()
    assert element(browser, "job-json-text").is_displayed()
    shown = json.loads(element(browser, "job-json-text").text)
    assert (shown["id"], shown["status"]) == (job["id"], "completed")


def test_cancelling_a_pending_job_from_its_page_makes_it_cancelled(browser, live_stack, api, pending_job):
    browser.get(page_url(live_stack, "job.html", id=pending_job["id"]))
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: element(b, "cancel-job").is_displayed(), "no Cancel button for the pending job")
    assert shown_status(browser) == "pending"
    assert not element(browser, "retry-job").is_displayed()
    element(browser, "cancel-job").click()

    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: shown_status(b) == "cancelled", "the page never showed the job cancelled")
    assert not element(browser, "cancel-job").is_displayed()
    assert not element(browser, "action-error").is_displayed()
    assert stored_job(api, pending_job["id"])["status"] == "cancelled"
    assert timeline_statuses(browser)[-1] == "cancelled"


def test_the_dashboard_shows_the_counts_that_api_stats_reports(browser, live_stack, api, screenshot):
    create_job(api, unique("Counted"))
    browser.get(page_url(live_stack, "dashboard.html"))

    def shown_matches_api(b: WebDriver):
        expected = stats(api)
        figures = shown_figures(b)
        shown = {
            "total": figures.get("stat-total"),
            "by_status": {name: figures.get(f"stat-status-{name}") for name in expected["by_status"]},
            "by_type": {name: figures.get(f"stat-type-{name}") for name in expected["by_type"]},
            "completed in the hour": figures.get("trend-completed"),
            "failed in the hour": figures.get("trend-failed"),
        }
        wanted = {
            "total": expected["total"],
            "by_status": expected["by_status"],
            "by_type": expected["by_type"],
            "completed in the hour": sum(bucket["completed"] for bucket in expected["throughput"]),
            "failed in the hour": sum(bucket["failed"] for bucket in expected["throughput"]),
        }
        return (shown, expected) if shown == wanted else False

    # The counts move while jobs run, so compare until one poll of the page and one of the API agree.
    shown, expected = WebDriverWait(browser, PAGE_DEADLINE_S, poll_frequency=0.5).until(
        shown_matches_api, "the dashboard never showed the counts /api/stats reports")
    assert shown["total"] >= 1
    assert set(expected["by_status"]) >= {"pending", "running", "completed", "failed", "cancelled"}
    assert len(expected["throughput"]) == 60
    assert chart_points(browser) == {"completed": 60, "failed": 60}
    screenshot("dashboard")


def dispatch_state(api) -> dict:
    response = api.get(f"{api.base_url}/api/jobs/dispatch", timeout=10)
    response.raise_for_status()
    return response.json()


@pytest.fixture
def admission_left_running(api):
    yield
    api.put(f"{api.base_url}/api/jobs/dispatch", json={"paused": False},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)


def test_the_dashboard_pauses_and_resumes_admission_with_the_admin_token(browser, live_stack, api,
                                                                         admission_left_running):
    browser.get(page_url(live_stack, "dashboard.html"))
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: element(b, "admission-state").text == "admitting", "the dashboard never showed admission running")
    assert dispatch_state(api)["paused"] is False

    fill(browser, {"admin-token": "not-the-admin-token"})
    element(browser, "toggle-admission").click()
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: element(b, "admission-error").is_displayed(), "#admission-error never showed")
    assert element(browser, "admission-error").get_attribute("data-status") == "403"
    assert dispatch_state(api)["paused"] is False

    fill(browser, {"admin-token": ADMIN_TOKEN})
    WebDriverWait(browser, PAGE_DEADLINE_S).until(lambda b: element(b, "toggle-admission").is_enabled())
    element(browser, "toggle-admission").click()
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: element(b, "admission-state").text == "paused", "the dashboard never showed admission paused")
    assert dispatch_state(api)["paused"] is True
    assert not element(browser, "admission-error").is_displayed()

    held = create_job(api, unique("Held"))  # waits in the backlog while paused
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: (shown_figures(b).get("admission-backlog") or 0) >= 1, "the backlog never showed the held job")
    assert stored_job(api, held["id"])["status"] == "pending"

    assert element(browser, "toggle-admission").text == "Resume admission"
    element(browser, "toggle-admission").click()
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: element(b, "admission-state").text == "admitting", "the dashboard never showed admission resumed")
    assert dispatch_state(api)["paused"] is False
    wait_for_job_status(api, held["id"], "completed")


def test_retrying_a_failed_job_asks_for_the_admin_token_and_then_requeues_it(browser, live_stack, api):
    # A main text with "#fail" makes every attempt fail (chalicelib/typed/executors.py), so the job ends failed.
    job = create_job(api, unique("Always fails #fail"))
    failed = wait_for_job_status(api, job["id"], "failed")
    browser.get(page_url(live_stack, "job.html", id=job["id"]))
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: element(b, "retry-job").is_displayed(), "no Retry button for the failed job")
    assert not element(browser, "cancel-job").is_displayed()
    assert element(browser, "job-error").text == failed["error"]

    def retry_with(token: str, status: str) -> None:
        fill(browser, {"admin-token": token})
        element(browser, "retry-job").click()
        WebDriverWait(browser, PAGE_DEADLINE_S).until(
            lambda b: element(b, "action-error").get_attribute("data-status") == status,
            f"the page never showed the API's {status}")
        assert status in element(browser, "action-error").text
        assert element(browser, "admin-token").get_attribute("aria-invalid") == "true"

    retry_with("", "401")
    retry_with("not-the-admin-token", "403")
    assert stored_job(api, job["id"])["status"] == "failed"

    fill(browser, {"admin-token": ADMIN_TOKEN})
    element(browser, "retry-job").click()
    # Requeued: a pending entry follows the failure. (The job then fails again, as its payload asks.)
    requeued_at = len(failed["timeline"])
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: timeline_statuses(b)[requeued_at:requeued_at + 1] == ["pending"],
        "the timeline never showed the job pending again")
    assert not element(browser, "action-error").is_displayed()
    assert stored_job(api, job["id"])["timeline"][requeued_at]["status"] == "pending"
    # Kept where the run page keeps it, so neither page asks for it again.
    assert browser.execute_script("return localStorage.getItem('pacer.adminToken')") == ADMIN_TOKEN


# ---- bulk actions in the jobs list ------------------------------------------

def bulk_result(browser: WebDriver) -> dict:
    """What the last bulk action reported: its counts, and each failure's job id -> (status, text)."""
    return browser.execute_script(
        "const box = document.getElementById('bulk-result');"
        "return {action: box.dataset.action, succeeded: Number(box.dataset.succeeded), failed: Number(box.dataset.failed),"
        " failures: Object.fromEntries([...document.querySelectorAll('#bulk-failures li')]"
        "  .map((li) => [li.dataset.jobId, [li.dataset.status, li.textContent]]))};")


def checkbox(browser: WebDriver, job_id: str):
    return browser.find_element(By.CSS_SELECTOR, f"#jobs-list .select-job[data-job-id='{job_id}']")


def selected_count(browser: WebDriver) -> int:
    return int(element(browser, "selected-count").get_attribute("data-count"))


def open_list_of(browser: WebDriver, live_stack, word: str, count: int) -> None:
    browser.get(page_url(live_stack, "jobs.html", q=word))
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: list_shows(b, q=word) and len(listed_ids(b)) == count, f"the list never showed the {count} jobs")


def run_bulk(browser: WebDriver, button_id: str, action: str) -> dict:
    """Click a bulk button and wait until the page reports the action and has reloaded the list."""
    before = element(browser, "jobs-table").get_attribute("data-query")
    browser.execute_script("document.getElementById('bulk-result').dataset.action = '';")
    element(browser, button_id).click()
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: element(b, "bulk-result").get_attribute("data-action") == action and list_shows(b)
        and element(b, "jobs-table").get_attribute("data-query") == before,
        f"the page never reported the {action}")
    return bulk_result(browser)


@pytest.fixture
def cancel_afterwards(api):
    """Jobs a test leaves pending are cancelled after it, so no scheduled job outlives the test."""
    ids: list[str] = []
    yield ids
    for job_id in ids:
        api.delete(f"{api.base_url}/api/jobs/{job_id}", timeout=10)


def test_cancel_selected_cancels_the_selected_pending_jobs_and_names_the_one_that_is_not_pending(
    browser, live_stack, api, cancel_afterwards
):
    word = uuid.uuid4().hex[:12]  # searched for, so only this test's jobs are listed
    pending = [create_job(api, f"Bulk {word} {n}", scheduled_for=an_hour_from_now())["id"] for n in range(4)]
    cancel_afterwards.extend(pending)
    finished = create_job(api, f"Bulk {word} finishes")["id"]
    wait_for_job_status(api, finished, "completed")
    kept = pending[0]

    open_list_of(browser, live_stack, word, 5)
    assert selected_count(browser) == 0 and not element(browser, "bulk-cancel").is_enabled()
    element(browser, "select-all").click()
    assert selected_count(browser) == 5
    checkbox(browser, kept).click()  # one left out by hand
    assert selected_count(browser) == 4
    assert not element(browser, "select-all").is_selected()

    result = run_bulk(browser, "bulk-cancel", "cancel")
    refused = api.delete(f"{api.base_url}/api/jobs/{finished}", timeout=10)
    assert refused.status_code == 409
    assert (result["succeeded"], result["failed"]) == (3, 1)
    status, text = result["failures"][finished]
    assert status == "409" and refused.json()["message"] in text
    assert "Cancelled 3 of 4 jobs; 1 failed" in element(browser, "bulk-summary").text

    assert {job_id: stored_job(api, job_id)["status"] for job_id in [*pending, finished]} == {
        **{job_id: "cancelled" for job_id in pending[1:]}, kept: "pending", finished: "completed"}
    # The list shows the new statuses, and only the job that failed is still selected.
    assert listed_rows(browser) == {**{job_id: "cancelled" for job_id in pending[1:]},
                                    kept: "pending", finished: "completed"}
    assert selected_count(browser) == 1 and checkbox(browser, finished).is_selected()


def test_retry_selected_needs_the_admin_token_then_requeues_the_failed_jobs_and_names_the_pending_one(
    browser, live_stack, api, cancel_afterwards
):
    word = uuid.uuid4().hex[:12]
    # A main text with "#fail" makes every attempt fail (chalicelib/typed/executors.py), so these end failed.
    failing = [create_job(api, f"Bulk {word} {n} #fail")["id"] for n in range(2)]
    pending = create_job(api, f"Bulk {word} waits", scheduled_for=an_hour_from_now())["id"]
    cancel_afterwards.append(pending)
    failed = {job_id: wait_for_job_status(api, job_id, "failed") for job_id in failing}

    open_list_of(browser, live_stack, word, 3)
    element(browser, "select-all").click()
    assert selected_count(browser) == 3

    result = run_bulk(browser, "bulk-retry", "retry")  # a fresh browser keeps no token
    assert (result["succeeded"], result["failed"]) == (0, 3)
    assert {status for status, _ in result["failures"].values()} == {"401"}
    assert element(browser, "admin-token").get_attribute("aria-invalid") == "true"
    assert all(stored_job(api, job_id)["status"] == "failed" for job_id in failing)
    assert selected_count(browser) == 3  # still selected, to try again with the token

    fill(browser, {"admin-token": ADMIN_TOKEN})
    result = run_bulk(browser, "bulk-retry", "retry")
    refused = api.post(f"{api.base_url}/api/jobs/{pending}/retry", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                       timeout=10)
    assert refused.status_code == 409
    assert (result["succeeded"], result["failed"]) == (2, 1)
    status, text = result["failures"][pending]
    assert status == "409" and refused.json()["message"] in text
    assert element(browser, "admin-token").get_attribute("aria-invalid") is None
    # Requeued: a pending entry follows each failure. (They then fail again, as their payloads ask.)
    for job_id, before in failed.items():
        assert stored_job(api, job_id)["timeline"][len(before["timeline"])]["status"] == "pending"
    assert stored_job(api, pending)["status"] == "pending"
    assert browser.execute_script("return localStorage.getItem('pacer.adminToken')") == ADMIN_TOKEN
