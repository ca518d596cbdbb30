"""Fair compute end to end: the API, the runtime's worker processes and the emulator, all real."""
import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
import requests

from chalicelib.resources import RESULTS_TABLE, STATE_TABLE
from tests.conftest import wait_until

pytestmark = pytest.mark.integration


def fresh_numbers(count: int) -> list[str]:
    """Numbers no earlier test or run asked for (so none is answered from the store), up to 64 bits."""
    rng = random.Random(time.time_ns())
    return [str(n) for n in rng.sample(range(10**15, 10**18), count)]


def submit_batch(api, caller: str, numbers: list[str]) -> list[str]:
    ids = []
    for offset in range(0, len(numbers), 100):
        response = api.post(f"{api.base_url}/api/compute/batch", json={"numbers": numbers[offset : offset + 100]},
                            headers={"X-Caller-ID": caller}, timeout=30)
        assert response.status_code == 202, response.text
        ids += [job["id"] for job in response.json()["jobs"]]
    return ids


def caller_stats(api, caller: str) -> dict:
    answer = api.get(f"{api.base_url}/api/callers", timeout=10).json()
    return next((c for c in answer["callers"] if c["caller"] == caller and c["origin"] == "compute"),
                {"done": 0, "backlog": 0, "in_flight": 0})


def moment(text: str) -> float:
    """An API time (ISO 8601 with a `Z`) as epoch seconds."""
    return datetime.fromisoformat(text).timestamp()


def view(api, request_id: str) -> dict:
    response = api.get(f"{api.base_url}/api/compute/{request_id}", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_small_caller_finishes_its_20_before_a_big_caller_with_1000_queued_finishes_200_more(api, aws):
    # 1,000 is enough: first come, first served would finish 1,000 of the big caller's before the small one's
    # 20, and even with fairness the in-flight window (100) ahead of them is finished meanwhile.
    big, small = f"big-{time.time_ns()}", f"small-{time.time_ns()}"
    big_ids = submit_batch(api, big, fresh_numbers(1000))
    small_ids = submit_batch(api, small, fresh_numbers(20))

    def small_all_done():
        return all(view(api, i)["status"] == "done" for i in small_ids)

    wait_until(small_all_done, timeout=120, interval=0.5, what="the small caller's 20 numbers")
    small_views = [view(api, i) for i in small_ids]
    arrived = min(moment(v["submitted_at"]) for v in small_views)
    last_done = max(moment(v["finished_at"]) for v in small_views)

    final = wait_until(lambda: (s := caller_stats(api, big))["done"] == 1000 and s, timeout=600, interval=2,
                       what="the big caller's 1,000 numbers")
    # Counted from the stored finish times, so how often this test polls does not change the answer.
    with ThreadPoolExecutor(8) as pool:
        big_finished = [moment(v["finished_at"]) for v in pool.map(lambda i: view(api, i), big_ids)]
    big_done_meanwhile = sum(arrived < t <= last_done for t in big_finished)
    assert big_done_meanwhile < 200, f"the big caller finished {big_done_meanwhile} while the small one waited"
    assert (final["backlog"], final["in_flight"], final["failed"]) == (0, 0, 0)
    assert caller_stats(api, small)["p95_wait_s"] is not None


def test_50_concurrent_requests_for_one_new_number_factor_it_exactly_once(api, aws):
    (number,) = fresh_numbers(1)

    def ask(i):
        # A connection each (a Session's pool holds 10), so all 50 are in flight at once.
        response = requests.post(f"{api.base_url}/api/compute", json={"number": number},
                            headers={"X-Caller-ID": f"dedup-{i % 5}"}, timeout=30)
        assert response.status_code == 202, response.text
        return response.json()["id"]

    with ThreadPoolExecutor(max_workers=50) as pool:
        ids = list(pool.map(ask, range(50)))
    def all_answered():
        views = [view(api, i) for i in ids]
        return views if all(v["status"] == "done" for v in views) else None

    views = wait_until(all_answered, timeout=60, interval=0.5, what="all 50 requests to be answered")
    assert sum(not v["cached"] for v in views) == 1
    assert len({tuple(v["factors"]) for v in views}) == 1
    record = aws["dynamodb"].get_item(TableName=STATE_TABLE.name,
                                      Key={"pk": {"S": f"CNUM#{number}"}, "sk": {"S": "NUM"}}, ConsistentRead=True)["Item"]
    assert record["computations"]["N"] == "1"
    # Every page: a filtered Scan answers page by page (LocalStack's pages are smaller than moto's).
    pages = aws["dynamodb"].get_paginator("scan").paginate(
        TableName=RESULTS_TABLE.name, FilterExpression="#n = :n", ExpressionAttributeNames={"#n": "number"},
        ExpressionAttributeValues={":n": {"S": number}}, ConsistentRead=True)
    results = [item for page in pages for item in page["Items"]]
    assert len(results) == 1, "one factorisation, one result item"


def callers_rows(api, caller: str) -> dict[str, dict]:
    """The caller's rows of GET /api/callers, by way in."""
    answer = api.get(f"{api.base_url}/api/callers", timeout=30)
    assert answer.status_code == 200, answer.text
    return {row["origin"]: row for row in answer.json()["callers"] if row["caller"] == caller}


def test_callers_shows_one_caller_in_both_ways_in_with_its_counts_throughput_and_queue_waits(api, aws):
    caller = f"both-{time.time_ns()}"
    submitted = time.time()
    submit_batch(api, caller, fresh_numbers(30))
    jobs = []
    for i in range(6):
        response = api.post(f"{api.base_url}/api/jobs", headers={"X-Caller-ID": caller}, timeout=30, json={
            "type": "email", "payload": {"to": "ann@example.com", "subject": f"{caller} {i}", "body": "hi"}})
        assert response.status_code == 201, response.text
        jobs.append(response.json()["id"])

    def all_settled():
        rows = callers_rows(api, caller)
        counts = {origin: (row["done"], row["backlog"], row["in_flight"]) for origin, row in rows.items()}
        return rows if counts == {"compute": (30, 0, 0), "typed": (6, 0, 0)} else None

    rows = wait_until(all_settled, timeout=120, interval=1, what="the caller's 30 numbers and 6 typed jobs settled")
    for origin, count in (("compute", 30), ("typed", 6)):
        row = rows[origin]
        assert (row["weight"], row["limit"], row["failed"], row["sampled"]) == (1.0, None, 0, count), row
        if time.time() - submitted < 55:  # all settled within the minute, and the sample holds them all
            assert row["throughput_per_min"] == count, row
        else:  # a loaded machine: some may have settled before the minute
            assert 0 < row["throughput_per_min"] <= count, row
        assert 0 <= row["p50_wait_s"] <= row["p95_wait_s"] < 60, row

    # A typed job's queue wait is its submit to its start, as the job's own record tells it.
    views = [api.get(f"{api.base_url}/api/jobs/{job_id}", timeout=10).json() for job_id in jobs]
    waits = sorted(moment(v["started_at"]) - moment(v["created_at"]) for v in views)
    # Nearest rank of 6: the largest. The sample and the job's record hold one start, the moment the worker's
    # start transaction records, even for a job that waited behind others of its message (job times are in ms).
    assert rows["typed"]["p95_wait_s"] == pytest.approx(waits[-1], abs=0.002)

    # One weight for the caller in both ways in.
    response = api.put(f"{api.base_url}/api/callers/{caller}", json={"weight": 2.5},
                       headers={"Authorization": "Bearer local-admin-token"}, timeout=10)
    assert response.status_code == 200, response.text
    assert {origin: row["weight"] for origin, row in callers_rows(api, caller).items()} == {"compute": 2.5,
                                                                                           "typed": 2.5}
