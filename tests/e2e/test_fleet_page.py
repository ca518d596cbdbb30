"""The fleet card of the control page, in a real browser: "Add bot" makes the local stack start a reference bot
process, which the page shows coming up and taking work."""
from __future__ import annotations

import uuid

import pytest
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import wait_until
from tests.e2e.test_browser import ADMIN_TOKEN, PAGE_DEADLINE_S, click_when_enabled, element, fill, open_page, \
    shown_count

pytestmark = pytest.mark.e2e

BOT_DEADLINE_S = 45  # a Python process to start and register, and the page's 2 s poll to show it
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def bot_rows(browser: WebDriver) -> dict[str, dict[str, str]]:
    """Each bot row the page shows, by bot id: its name, state and done count. Read in one script, since the page
    replaces the rows on every poll and an element found a moment before may be gone."""
    return browser.execute_script("""
        const rows = {};
        for (const row of document.querySelectorAll("#bots-list tr[data-bot-id]")) {
          rows[row.dataset.botId] = {name: row.dataset.botName, state: row.dataset.state,
                                     done: row.querySelector(".bot-done").textContent};
        }
        return rows;""")


@pytest.fixture
def no_reference_bots_after(api, live_stack):
    """Put the bot count back to none, and wait for the stack to stop the processes, for the tests that share it."""
    yield
    api.put(f"{api.base_url}/api/bots/count", json={"count": 0}, headers=ADMIN, timeout=10)
    wait_until(lambda: not any(name in live_stack.services and live_stack.services[name].process.poll() is None
                               for name in list(live_stack.reference_bots)), timeout=30, what="the bots to stop")


def test_adding_a_bot_on_the_page_starts_one_that_comes_up_and_takes_a_bot_job(
        browser, live_stack, api, no_reference_bots_after, screenshot):
    before = api.get(f"{api.base_url}/api/bots/count", timeout=10).json()["count"] or 0
    open_page(browser, live_stack)
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: shown_count(b, "bots-desired") == before, "#bots-desired never showed the stored count")
    known = set(bot_rows(browser))

    fill(browser, **{"admin-token": ADMIN_TOKEN})
    click_when_enabled(browser, "add-bot")
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: shown_count(b, "bots-desired") == before + 1, "#bots-desired never went up by one")
    assert not element(browser, "bots-error").is_displayed()
    assert api.get(f"{api.base_url}/api/bots/count", timeout=10).json() == {"count": before + 1}

    # The stack started a real process for it, and the bot registered itself: the page lists it, up.
    new_rows = WebDriverWait(browser, BOT_DEADLINE_S, poll_frequency=0.5).until(
        lambda b: {bot_id: row for bot_id, row in bot_rows(b).items()
                   if bot_id not in known and row["state"] in ("idle", "busy")},
        "no new bot showed up on the page")
    [(bot_id, row)] = new_rows.items()
    assert row["name"] in live_stack.reference_bots
    assert live_stack.services[row["name"]].process.poll() is None
    assert shown_count(browser, "bots-up") >= 1

    job = api.post(f"{api.base_url}/api/jobs", headers={"X-Caller-ID": f"fleet-{uuid.uuid4().hex[:6]}"}, timeout=10,
                   json={"type": "email", "target": "bot",
                         "payload": {"to": "ann@example.com", "subject": "for a bot", "body": "hi"}})
    assert job.status_code == 201, job.text
    done = wait_until(lambda: (view := api.get(f"{api.base_url}/api/jobs/{job.json()['id']}", timeout=10).json())
                      ["status"] == "completed" and view, timeout=BOT_DEADLINE_S, interval=0.5,
                      what="the bot job to be completed")
    assert done["bot"] == bot_id
    WebDriverWait(browser, PAGE_DEADLINE_S).until(
        lambda b: bot_rows(b).get(bot_id, {}).get("done") == "1", "the bot's row never showed its job done")
    bots = element(browser, "bots")
    browser.execute_script("arguments[0].scrollIntoView()", bots)  # the picture is of what the viewport shows
    screenshot("fleet", bots)
