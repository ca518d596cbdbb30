"""Paced runs end to end: the API, the runtime's worker processes and moto's server, all real.

Each test ends with the invariants: processed == result items, no duplicates.
"""
import time

import pytest

from chalicelib.core.jobs import JobEnvelope, JobSpec
from chalicelib.runs.models import Tick
from chalicelib.resources import JOBS_QUEUE, RESULTS_TABLE, STATE_TABLE, TICKS_QUEUE
from tests.conftest import wait_until

pytestmark = pytest.mark.integration


def status(api) -> dict:
    return api.get(f"{api.base_url}/api/status", timeout=10).json()


def start(api, **body) -> dict:
    response = api.post(f"{api.base_url}/api/run", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def result_items(aws, run_id: str) -> list[dict]:
    items, kwargs = [], {}
    while True:
        page = aws["dynamodb"].scan(
            TableName=RESULTS_TABLE.name, FilterExpression="#group = :r",
            ExpressionAttributeNames={"#group": "group"},  # a reserved word
            ExpressionAttributeValues={":r": {"S": run_id}}, **kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def queue_url(aws, name: str) -> str:
    return aws["sqs"].get_queue_url(QueueName=name)["QueueUrl"]


def settled(api) -> dict | None:
    """The status once every enqueued job has an outcome and no message is left to deliver."""
    current = status(api)
    return current if current["in_flight"] == 0 else None


def assert_invariants(aws, final: dict) -> None:
    items = result_items(aws, final["run_id"])
    done = [i for i in items if i["outcome"]["S"] == "done"]
    assert final["processed"] == len(done), "processed must equal the number of result items"
    assert final["failed"] == len(items) - len(done)
    assert len({i["job_id"]["S"] for i in items}) == len(items), "no job may have two results"
    assert final["processed"] + final["failed"] == final["enqueued"]


def test_a_run_of_200_at_a_high_rate_completes_with_processed_equal_to_200_result_items(api, aws):
    run = start(api, x=12000, y=1, total=200)
    final = wait_until(lambda: (s := status(api))["state"] == "completed" and s, timeout=60, what="completion")
    assert (final["enqueued"], final["processed"], final["failed"]) == (200, 200, 0)
    assert final["run_id"] == run["run_id"]
    items = result_items(aws, run["run_id"])
    assert len(items) == 200
    assert all(int(i["number"]["S"]) == _product(i["factors"]["L"]) for i in items), "factors multiply back"
    assert_invariants(aws, final)


def _product(factors) -> int:
    product = 1
    for factor in factors:
        product *= int(factor["S"])
    return product


def enqueued_per_second(api, seconds: float) -> float:
    before = status(api)["enqueued"]
    time.sleep(seconds)
    return (status(api)["enqueued"] - before) / seconds


def test_a_rate_change_shows_in_the_achieved_rate(api, aws):
    start(api, x=120, y=1)  # 2 jobs a second
    time.sleep(2)
    slow = enqueued_per_second(api, 4)
    response = api.put(f"{api.base_url}/api/run", json={"x": 1200, "y": 1}, timeout=10)  # 20 a second
    assert response.status_code == 200 and response.json()["configured_per_min"] == 1200.0
    time.sleep(2)  # a rate change must bite within 2 s
    fast = enqueued_per_second(api, 4)
    assert 1.0 <= slow <= 3.5, slow
    assert 15 <= fast <= 26, fast
    assert status(api)["achieved"]["enqueued_per_min"] > 2 * 120
    api.post(f"{api.base_url}/api/stop", timeout=10)
    assert_invariants(aws, wait_until(lambda: settled(api), timeout=60, what="the run to settle"))


def test_stop_halts_enqueueing(api, aws):
    start(api, x=600, y=1)
    wait_until(lambda: status(api)["enqueued"] >= 20, timeout=20, what="jobs to flow")
    stopped = api.post(f"{api.base_url}/api/stop", timeout=10).json()
    assert stopped["state"] == "stopped"
    time.sleep(3)
    after = status(api)
    assert after["enqueued"] == stopped["enqueued"], "nothing may be enqueued after a stop"
    assert_invariants(aws, wait_until(lambda: settled(api), timeout=60, what="the run to settle"))


def test_a_duplicated_job_message_creates_no_duplicate_results(api, aws):
    run = start(api, x=12000, y=1, total=30)
    final = wait_until(lambda: (s := status(api))["state"] == "completed" and s, timeout=60, what="completion")
    items = result_items(aws, run["run_id"])
    jobs = [JobSpec(id=i["job_id"]["S"], number=i["number"]["S"]) for i in items[:10]]
    body = JobEnvelope(group=run["run_id"], jobs=jobs).model_dump_json()
    url = queue_url(aws, JOBS_QUEUE.name)
    for _ in range(3):
        aws["sqs"].send_message(QueueUrl=url, MessageBody=body)
    wait_until(lambda: _queue_empty(aws, url), timeout=30, what="the duplicates to be consumed")
    again = status(api)
    assert (again["processed"], again["enqueued"]) == (final["processed"], final["enqueued"]) == (30, 30)
    assert len(result_items(aws, run["run_id"])) == 30
    assert_invariants(aws, again)


def _queue_empty(aws, url: str) -> bool:
    attributes = aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return all(attributes[k] == "0" for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                              "ApproximateNumberOfMessagesDelayed"))


def test_a_duplicated_tick_enqueues_nothing_twice(api, aws):
    run = start(api, x=600, y=1)  # 10 a second
    began = time.monotonic()
    time.sleep(2)
    meta = aws["dynamodb"].get_item(TableName=STATE_TABLE.name,
                                    Key={"pk": {"S": f"RUN#{run['run_id']}"}, "sk": {"S": "META"}})["Item"]
    tick = Tick(run_id=run["run_id"], token=meta["tick_token"]["S"]).model_dump_json()
    url = queue_url(aws, TICKS_QUEUE.name)
    aws["sqs"].send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": tick} for i in range(5)])
    time.sleep(3)
    stopped = api.post(f"{api.base_url}/api/stop", timeout=10).json()
    elapsed = time.monotonic() - began
    # Five extra copies of a live tick may not pull jobs forward or send any twice:
    # at most what 10/s owes for the elapsed time plus the 1 s lookahead.
    assert stopped["enqueued"] <= 10 * (elapsed + 1) + 1, (stopped["enqueued"], elapsed)
    final = wait_until(lambda: settled(api), timeout=60, what="the run to settle")
    assert final["processed"] == final["enqueued"] == stopped["enqueued"]
    assert_invariants(aws, final)


def test_bad_input_gets_400_naming_the_field_and_starts_nothing(api):
    before = status(api)
    for body, field in (({"x": 10}, "y"), ({"x": 10, "y": "fast"}, "y"), ({"x": -1, "y": 1}, "x")):
        response = api.post(f"{api.base_url}/api/run", json=body, timeout=10)
        assert response.status_code == 400 and field in response.json()["message"]
    response = api.post(f"{api.base_url}/api/run", data="{oops", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "JSON" in response.json()["message"]
    assert status(api)["run_id"] == before["run_id"]


def test_the_api_answers_cors_preflight_for_the_page(api):
    response = api.options(f"{api.base_url}/api/run", headers={
        "Origin": "http://127.0.0.1:8080", "Access-Control-Request-Method": "PUT"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "PUT" in response.headers["Access-Control-Allow-Methods"]


def test_health_checks_the_queue_and_the_tables(api):
    body = api.get(f"{api.base_url}/api/health", timeout=10).json()
    assert body["status"] == "ok"
    assert {"jobs_queue", "state_table", "results_table"} <= set(body["checks"])
