"""Failure drills: real processes, really killed. Each ends by checking the invariants.

    make drills          # full scale (20,000 jobs in the kill drill)
    make drills-quick    # the short form CI runs (5,000)

Every drill prints: jobs, kills, restarts, duplicates found, lost, wall time.
"""
from __future__ import annotations

import os
import random
import signal
import threading
import time
from contextlib import contextmanager

import boto3
import pytest
import requests

from chalicelib.runs.models import Tick
from chalicelib.resources import JOBS_DLQ, JOBS_QUEUE, RESULTS_TABLE, STATE_TABLE, TICKS_QUEUE
from infra.emulator import free_port
from infra.stack import Stack
from tests.conftest import LOG_DIR, wait_until
from tests.processes import job_workers

pytestmark = pytest.mark.drill
FULL = os.environ.get("PACER_DRILL_SCALE", "short") == "full"
UNLIMITED = {"x": 1_000_000, "y": 0.001}
DRILL_VISIBILITY_S = 15  # a killed worker's batch comes back this soon (AWS: 6x the function timeout)


@contextmanager
def drill_stack(name: str, workers: int = 2, **env: str):
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOG_DIR / f"drill-{name}.log", "w") as log:
        stack = Stack(api_port=free_port(), frontend_port=free_port(), workers=workers, log=log, env=env)
        try:
            stack.start()
            stack.aws = {n: boto3.client(n, endpoint_url=stack.endpoint_url, region_name="us-east-1",
                                         aws_access_key_id="testing", aws_secret_access_key="testing")
                         for n in ("sqs", "dynamodb")}
            jobs_url = stack.aws["sqs"].get_queue_url(QueueName=JOBS_QUEUE.name)["QueueUrl"]
            stack.aws["sqs"].set_queue_attributes(QueueUrl=jobs_url,
                                                  Attributes={"VisibilityTimeout": str(DRILL_VISIBILITY_S)})
            yield stack
        finally:
            stack.stop()


def status(stack) -> dict:
    return requests.get(f"{stack.api_url}/api/status", timeout=10).json()


def start_run(stack, **body) -> dict:
    response = requests.post(f"{stack.api_url}/api/run", json=body, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()


def queue_counts(stack, name: str) -> int:
    url = stack.aws["sqs"].get_queue_url(QueueName=name)["QueueUrl"]
    attributes = stack.aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return sum(int(attributes[k]) for k in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                            "ApproximateNumberOfMessagesDelayed"))


def outcomes(stack, run_id: str) -> list[dict]:
    items, kwargs = [], {}
    while True:
        page = stack.aws["dynamodb"].scan(TableName=RESULTS_TABLE.name, FilterExpression="#group = :r",
                                          ExpressionAttributeNames={"#group": "group"},  # a reserved word
                                          ExpressionAttributeValues={":r": {"S": run_id}}, **kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}


def settle_and_check(stack, run_id: str, total: int, began: float, name: str, kills=0, restarts=0,
                     timeout: float = 300) -> dict:
    """Wait until every job has an outcome and SQS is empty; then check and print the invariants."""
    final = wait_until(lambda: (s := status(stack))["state"] == "completed" and s, timeout=timeout, interval=0.5,
                       what=f"run {run_id} to complete")
    try:
        wait_until(lambda: queue_counts(stack, JOBS_QUEUE.name) == 0, timeout=60, what="no job message left")
    except AssertionError:
        # Seen once in CI's kill drill on moto (and once on LocalStack): every job had its outcome, and 10 messages
        # stayed in flight for over 60 s after the last kill, with every worker polling. Say so, with the queue's
        # state, and wait up to two minutes more to learn whether they come back: leftovers must still drain.
        url = stack.aws["sqs"].get_queue_url(QueueName=JOBS_QUEUE.name)["QueueUrl"]
        print("jobs queue after 60 s:", stack.aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])
        late = time.monotonic()
        wait_until(lambda: queue_counts(stack, JOBS_QUEUE.name) == 0, timeout=120, what="no job message left, 3 min on")
        print(f"DRILL {name}: the jobs queue drained {time.monotonic() - late + 60:.0f} s after the run completed")
    wall = time.monotonic() - began
    items = outcomes(stack, run_id)
    ids = {i["job_id"]["S"] for i in items}
    done = sum(1 for i in items if i["outcome"]["S"] == "done")
    expected = {f"{run_id}:{i:08d}" for i in range(total)}
    lost = len(expected - ids)
    duplicates = (len(items) - len(ids)) + (final["processed"] + final["failed"] - len(items))
    figures = {"drill": name, "jobs": total, "kills": kills, "restarts": restarts, "duplicates": duplicates,
               "lost": lost, "failed": final["failed"], "wall_s": round(wall, 1)}
    print(f"\nDRILL {name}: jobs {total}, kills {kills}, restarts {restarts}, duplicates found {duplicates}, "
          f"lost {lost}, failed {final['failed']}, wall {wall:.1f} s", flush=True)
    assert lost == 0 and duplicates == 0
    assert done == final["processed"] == final["enqueued"] - final["failed"]
    assert final["enqueued"] == total and ids <= expected
    assert queue_counts(stack, JOBS_DLQ.name) == 0
    return figures


def test_kill_drill_sigkill_a_random_worker_every_3_s_and_lose_nothing():
    total = 20_000 if FULL else 5_000
    with drill_stack("kill", workers=4) as stack:
        began = time.monotonic()
        run = start_run(stack, **UNLIMITED, total=total)
        kills, stop = [], threading.Event()

        def killer():
            while not stop.wait(3):
                victims = job_workers(stack)
                if victims:
                    victim = random.choice(victims)
                    os.kill(victim, signal.SIGKILL)
                    kills.append(victim)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        try:
            # Killing goes on until every job has an outcome, and for at least three kills:
            # each one strands a batch that must come back after the visibility timeout.
            wait_until(lambda: len(kills) >= 3 and status(stack)["state"] == "completed", timeout=300,
                       what="the run to complete under fire")
        finally:
            stop.set()
            thread.join()
        assert len(kills) >= 3, "the drill must have killed workers"
        wait_until(lambda: len(job_workers(stack)) == 4, timeout=30, what="the supervisor to restart every worker")
        settle_and_check(stack, run["run_id"], total, began, "kill", kills=len(kills))


def test_restart_drill_restart_the_api_and_the_scheduler_twice_mid_run():
    total = 6_000 if FULL else 3_000
    with drill_stack("restart") as stack:
        began = time.monotonic()
        run = start_run(stack, x=12_000, y=1, total=total)  # 200 a second: the run lasts 15-30 s
        restarts = 0
        for _ in range(2):
            wait_until(lambda: status(stack)["enqueued"] >= (restarts + 1) * total // 4, timeout=120,
                       what="progress before the restart")
            before = status(stack)
            for service in ("api", "runtime"):
                stack.restart(service)
                restarts += 1
            after = status(stack)
            # Right after each restart the status is the stored truth, never behind what was shown.
            assert after["run_id"] == run["run_id"] and after["state"] in ("running", "completed")
            assert after["enqueued"] >= before["enqueued"] and after["processed"] >= before["processed"]
        settle_and_check(stack, run["run_id"], total, began, "restart", restarts=restarts)


def test_injected_failure_drill_every_job_ends_processed_or_failed_after_its_retries():
    total = 5_000 if FULL else 2_000
    with drill_stack("failures", PACER_FAILURE_RATE="0.2") as stack:
        began = time.monotonic()
        run = start_run(stack, **UNLIMITED, total=total)
        figures = settle_and_check(stack, run["run_id"], total, began, "injected failures (20%)")
        # Three attempts at 20% each: about 0.8% end failed. Zero would mean no failure was injected.
        assert 0 < figures["failed"] < total * 0.03


def test_duplicate_drill_every_message_sent_twice_and_duplicate_ticks():
    total = 5_000 if FULL else 2_000
    with drill_stack("duplicates", PACER_DRILL_DUPLICATE_SENDS="true") as stack:
        began = time.monotonic()
        run = start_run(stack, x=60_000, y=1, total=total)  # 1,000 a second
        wait_until(lambda: status(stack)["enqueued"] > 0, timeout=30, what="the first claim")
        meta = stack.aws["dynamodb"].get_item(TableName=STATE_TABLE.name, Key={
            "pk": {"S": f"RUN#{run['run_id']}"}, "sk": {"S": "META"}})["Item"]
        tick = Tick(run_id=run["run_id"], token=meta["tick_token"]["S"]).model_dump_json()
        url = stack.aws["sqs"].get_queue_url(QueueName=TICKS_QUEUE.name)["QueueUrl"]
        stack.aws["sqs"].send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": tick}
                                                                   for i in range(3)])
        settle_and_check(stack, run["run_id"], total, began, "duplicates")
