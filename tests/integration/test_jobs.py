"""Typed jobs end to end: the API, the runtime's worker processes and the emulator, all real."""
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import requests

from chalicelib.resources import RESULTS_TABLE
from chalicelib.settings import Settings
from tests.conftest import wait_until

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer local-admin-token"}
WINDOW = Settings().typed_max_in_flight  # the stack runs with the default settings


def email(tag: str, i: int, priority: int = 3, **extra) -> dict:
    return {"type": "email", "priority": priority, **extra,
            "payload": {"to": "ann@example.com", "subject": f"{tag} {i}", "body": "hello"}}


def submit_all(api, bodies: list[dict], caller: str) -> list[dict]:
    def submit(body):
        # A connection each (a Session's pool holds 10), so the posts overlap.
        response = requests.post(f"{api.base_url}/api/jobs", json=body, headers={"X-Caller-ID": caller}, timeout=30)
        assert response.status_code == 201, response.text
        return response.json()

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(submit, bodies))


def set_paused(api, paused: bool) -> None:
    response = api.put(f"{api.base_url}/api/jobs/dispatch", json={"paused": paused}, headers=ADMIN, timeout=30)
    assert response.status_code == 200 and response.json()["paused"] is paused, response.text


def walk(api, query: str) -> list[dict]:
    jobs, token = [], None
    while True:
        response = api.get(f"{api.base_url}/api/jobs?{query}" + (f"&next={token}" if token else ""), timeout=30)
        assert response.status_code == 200, response.text
        jobs += response.json()["jobs"]
        token = response.json()["next"]
        if token is None:
            return jobs


def settled(api, tag: str, count: int) -> list[dict]:
    """The tagged jobs, once admission has nothing left in its backlog or in flight."""
    state = lambda: api.get(f"{api.base_url}/api/jobs/dispatch", timeout=10).json()
    wait_until(lambda: (s := state())["backlog"] == 0 and s["in_flight"] == 0, timeout=120, interval=0.5,
               what=f"the {count} jobs tagged {tag} to settle")
    jobs = walk(api, f"q={tag}&limit=100")
    assert len(jobs) == count and not {j["status"] for j in jobs} & {"pending", "running"}, jobs
    return jobs


@pytest.fixture
def paused(api):
    set_paused(api, True)
    yield
    set_paused(api, False)


def test_walking_every_page_of_1000_jobs_returns_each_exactly_once(api):
    tag = f"page{time.time_ns()}"
    # Scheduled a day ahead, they stay pending in the schedule: the listing is all this test puts to work.
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    created = {job["id"] for job in submit_all(api, [email(tag, i, i % 5 + 1, scheduled_for=tomorrow)
                                                     for i in range(1000)], caller=tag)}
    assert len(created) == 1000
    for query in (f"q={tag}&limit=100", f"q={tag}&status=pending&sort=priority&order=asc&limit=37"):
        ids = [job["id"] for job in walk(api, query)]
        assert len(ids) == len(set(ids)) == 1000 and set(ids) == created, query


def test_jobs_queued_while_paused_start_highest_priority_first_apart_from_the_in_flight_window(api, paused):
    tag = f"prio{time.time_ns()}"
    bodies = [email(tag, i, priority=(i * 7) % 5 + 1) for i in range(200)]  # four windows' worth
    submit_all(api, bodies, caller=tag)
    assert api.get(f"{api.base_url}/api/jobs/dispatch", timeout=10).json()["in_flight"] == 0
    set_paused(api, False)
    jobs = settled(api, tag, 200)
    assert {j["status"] for j in jobs} == {"completed"}
    started = [j["priority"] for j in sorted(jobs, key=lambda j: j["started_at"])]
    # A job could only be overtaken by higher priorities admitted no later than itself: those in flight with it.
    overtaken_by = [sum(later > priority for later in started[k + 1:]) for k, priority in enumerate(started)]
    assert max(overtaken_by) < WINDOW, started


def test_cancelling_while_workers_pick_jobs_up_ends_each_in_exactly_one_of_cancelled_or_completed(api, aws, paused):
    tag = f"race{time.time_ns()}"
    jobs = submit_all(api, [email(tag, i) for i in range(40)], caller=tag)
    set_paused(api, False)

    def cancel(pair):
        index, job = pair
        time.sleep(index * 0.03)  # spread over the time the workers take to start them, to meet them mid-way
        return job["id"], requests.delete(f"{api.base_url}/api/jobs/{job['id']}", timeout=30).status_code

    # The last submitted first: they start last, so the cancels meet some still pending and, later, the first
    # ones already running or done, and in between the jobs being picked up.
    with ThreadPoolExecutor(8) as pool:
        answers = dict(pool.map(cancel, enumerate(reversed(jobs))))
    final = {j["id"]: j for j in settled(api, tag, 40)}
    assert set(answers.values()) <= {200, 409}
    for job_id, code in answers.items():
        detail = api.get(f"{api.base_url}/api/jobs/{job_id}", timeout=10).json()
        statuses = [entry["status"] for entry in detail["timeline"]]
        result = aws["dynamodb"].get_item(TableName=RESULTS_TABLE.name, Key={"job_id": {"S": job_id}})
        if code == 200:
            assert final[job_id]["status"] == "cancelled" and "running" not in statuses and "Item" not in result
        else:
            assert final[job_id]["status"] == "completed" and "cancelled" not in statuses and "Item" in result
    assert 200 in answers.values() and 409 in answers.values(), "the cancels should have met both cases"


def test_a_scheduled_job_starts_when_it_falls_due_not_at_the_next_watchdog(api):
    due = datetime.now(timezone.utc) + timedelta(seconds=5)
    job = submit_all(api, [email(f"soon{time.time_ns()}", 0, scheduled_for=due.isoformat())], caller="scheduler")[0]
    assert job["status"] == "pending"

    def completed():
        found = api.get(f"{api.base_url}/api/jobs/{job['id']}", timeout=10).json()
        return found if found["status"] == "completed" else None

    detail = wait_until(completed, timeout=90, what="the scheduled job to complete")
    started = datetime.fromisoformat(next(e["at"] for e in detail["timeline"] if e["status"] == "running"))
    assert started >= due - timedelta(seconds=1)  # not before its time (the API keeps milliseconds)
    # Woken by its own message: the minute's watchdog alone would start it up to 60 s late.
    assert started - due < timedelta(seconds=15), detail["timeline"]
