"""The dashboard's datalake and metrics cards, in a real browser, against the whole running system."""
from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import wait_until
from tests.e2e.test_jobs_pages import page_url

pytestmark = pytest.mark.e2e


def test_the_datalake_card_lists_each_date_with_its_success_rate_and_its_export_link_downloads_the_records(
        browser, live_stack, api, tmp_path, screenshot):
    run = api.post(f"{api.base_url}/api/run", json={"x": 60000, "y": 1, "total": 50}, timeout=10).json()
    prefix = f"{run['run_id']}:"

    def landed():
        stats = api.get(f"{api.base_url}/api/datalake/stats", timeout=10).json()
        if not stats["dates"]:
            return None
        day = stats["dates"][0]["date"]
        text = api.get(f"{api.base_url}/api/datalake/export/{day}", timeout=30).text
        mine = [json.loads(line) for line in text.splitlines() if json.loads(line)["id"].startswith(prefix)]
        return (stats, day) if len(mine) == 50 else None

    stats, day = wait_until(landed, timeout=60, what="the run's 50 results in the datalake")
    browser.get(page_url(live_stack, "dashboard.html"))

    def row_matches(b):
        rows = b.find_elements(By.CSS_SELECTOR, f'#datalake-rows tr[data-date="{day}"]')
        if not rows:
            return False
        cells = [c.get_attribute("textContent") for c in rows[0].find_elements(By.TAG_NAME, "td")]
        expected = api.get(f"{api.base_url}/api/datalake/stats", timeout=10).json()["dates"][0]
        shown_records = int("".join(ch for ch in cells[2] if ch.isdigit()))
        return cells if shown_records == expected["records"] and cells[6].endswith("%") else False

    cells = WebDriverWait(browser, 20, poll_frequency=0.5).until(row_matches, "the datalake card never showed the day")
    assert cells[0] == day and cells[7] == "NDJSON"
    metrics = WebDriverWait(browser, 20).until(lambda b: b.find_elements(By.ID, "metric-done"))
    assert metrics[0].get_attribute("textContent") not in ("", "—")
    assert browser.find_element(By.ID, "metric-lag").get_attribute("textContent").endswith("s")
    screenshot("datalake", browser.find_element(By.CSS_SELECTOR, "section[aria-labelledby='datalake-title']"))

    link = browser.find_element(By.CSS_SELECTOR, f'a.export-link[data-date="{day}"]')
    assert link.get_attribute("href") == f"{live_stack.api_url}/api/datalake/export/{day}"
    # NDJSON is not a type a browser shows: following the link downloads the day's file.
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", link)
    link.click()
    target = downloads / f"results-{day}.ndjson"
    wait_until(lambda: target.exists() and target.stat().st_size > 0, timeout=20, what=f"{target.name} downloaded")
    ids = [json.loads(line)["id"] for line in target.read_text().splitlines() if line.strip()]
    assert len([i for i in ids if i.startswith(prefix)]) == 50 and len(ids) == len(set(ids))
