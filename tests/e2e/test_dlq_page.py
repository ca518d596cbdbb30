"""The dead-letter page (dlq.html), in a real browser, against the whole running system.

The dead letter is real: a body no worker can parse, sent to the jobs queue,
fails five receives and SQS moves it to the DLQ, as in
tests/integration/test_fleet_and_dlq.py.
"""
from __future__ import annotations

import uuid
from urllib.parse import urlencode

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from chalicelib.resources import JOBS_DLQ, JOBS_QUEUE
from tests.conftest import wait_until
from tests.integration.test_fleet_and_dlq import drain

pytestmark = pytest.mark.e2e

PAGE_DEADLINE_S = 15
DLQ_DEADLINE_S = 90  # five receives; an unparseable message is given no backoff, so a few seconds
ADMIN = {"Authorization": "Bearer local-admin-token"}


def page_url(live_stack, page: str) -> str:
    return f"http://127.0.0.1:{live_stack.frontend_port}/{page}?{urlencode({'api': live_stack.api_url})}"


def element(browser: WebDriver, element_id: str):
    return browser.find_element(By.ID, element_id)


def shown_letters(browser: WebDriver) -> dict[str, dict[str, str]]:
    """The dead letters the page lists: message id -> its reason and body, read in one script call."""
    return browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#dlq-list tr[data-message-id]')].map((row) =>"
        " [row.dataset.messageId, {reason: row.querySelector('[data-test=reason]').textContent,"
        "  body: row.querySelector('[data-test=body]').textContent}]));")


def listed(browser: WebDriver) -> bool:
    return element(browser, "dlq-table").get_attribute("data-state") in ("ready", "error")


def dead_letters(api) -> dict:
    response = api.get(f"{api.base_url}/api/dlq", headers=ADMIN, params={"limit": 100}, timeout=10)
    response.raise_for_status()
    return response.json()


@pytest.fixture
def queues(aws):
    urls = {name: aws["sqs"].get_queue_url(QueueName=name)["QueueUrl"] for name in (JOBS_QUEUE.name, JOBS_DLQ.name)}
    drain(aws, urls[JOBS_DLQ.name])
    yield urls
    drain(aws, urls[JOBS_DLQ.name])


def test_the_dlq_page_lists_a_poison_message_with_its_reason_and_redrives_it_to_the_jobs_queue(
    browser, live_stack, api, aws, queues, screenshot
):
    body = f"{{this is not a job {uuid.uuid4().hex[:10]}"
    message_id = aws["sqs"].send_message(QueueUrl=queues[JOBS_QUEUE.name], MessageBody=body)["MessageId"]
    wait_until(lambda: any(m["message_id"] == message_id for m in dead_letters(api)["messages"]),
               timeout=DLQ_DEADLINE_S, interval=1, what="the poison message in the DLQ")

    # A fresh browser keeps no token: the page says the list needs one, as the API does (401).
    browser.get(page_url(live_stack, "dlq.html"))
    assert element(browser, "dlq-table").get_attribute("data-state") == "idle"
    element(browser, "refresh-dlq").click()
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: element(b, "dlq-error").get_attribute("data-status") == "401", "the page never showed the 401")
    assert element(browser, "admin-token").get_attribute("aria-invalid") == "true"
    assert not element(browser, "redrive-dlq").is_enabled()

    element(browser, "admin-token").send_keys("local-admin-token")
    element(browser, "refresh-dlq").click()
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: message_id in shown_letters(b), "the page never listed the poison message")
    shown = shown_letters(browser)[message_id]
    stored = {m["message_id"]: m for m in dead_letters(api)["messages"]}[message_id]
    assert shown["body"] == body
    assert "unparseable message" in shown["reason"] and shown["reason"] == stored["reason"]
    assert element(browser, "dlq-count").get_attribute("data-value") == "1"
    assert not element(browser, "dlq-error").is_displayed()
    screenshot("dlq")

    element(browser, "redrive-dlq").click()
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: element(b, "dlq-message").is_displayed() and listed(b), "the page never showed the redrive")
    message = element(browser, "dlq-message")
    assert (message.get_attribute("data-moved"), message.get_attribute("data-remaining")) == ("1", "0")
    assert shown_letters(browser) == {}
    assert "empty" in element(browser, "dlq-list").text
    assert element(browser, "dlq-count").get_attribute("data-value") == "0"
    assert not element(browser, "redrive-dlq").is_enabled()

    # It really went back to the jobs queue: the workers fail it again and SQS returns it, as a new message.
    returned = wait_until(lambda: [m for m in dead_letters(api)["messages"] if m["body"] == body],
                          timeout=DLQ_DEADLINE_S, interval=1, what="the redriven message back in the DLQ")
    assert [m["message_id"] for m in returned] != [message_id]
    # And the page's token is kept where every page keeps it.
    assert browser.execute_script("return localStorage.getItem('pacer.adminToken')") == "local-admin-token"


def test_the_header_of_every_page_links_the_dlq_page(browser, live_stack):
    # The nav comes from common.js's one list of pages, so the jobs page stands for all of them.
    browser.get(page_url(live_stack, "jobs.html"))
    link = WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "#site-nav [data-test='nav-dlq']"), "no Dead letters link")[0]
    link.click()
    WebDriverWait(browser, PAGE_DEADLINE_S).until(lambda b: "/dlq.html?" in b.current_url)
    assert browser.find_element(By.CSS_SELECTOR, "#site-nav [aria-current='page']").text == "Dead letters"
