"""Issue #4 on the live stack: live concurrency, the DLQ and its endpoints, visible workers."""
import time

import pytest

from chalicelib.resources import JOBS_DLQ, JOBS_QUEUE
from tests.conftest import wait_until
from tests.processes import job_workers

pytestmark = pytest.mark.integration
ADMIN = {"Authorization": "Bearer local-admin-token"}


def put_concurrency(api, n: int):
    return api.put(f"{api.base_url}/api/workers", json={"concurrency": n}, headers=ADMIN, timeout=10)


def test_the_runtime_follows_a_concurrency_change_within_5_s_and_loses_nothing_scaling_down(api, aws, live_stack):
    try:
        assert put_concurrency(api, 3).status_code == 200
        began = time.monotonic()
        wait_until(lambda: len(job_workers(live_stack)) == 3, timeout=5, what="3 job workers")
        print(f"scaled up in {time.monotonic() - began:.1f} s")
        api.post(f"{api.base_url}/api/run", json={"x": 1_000_000, "y": 0.001, "total": 3000}, timeout=10)
        wait_until(lambda: api.get(f"{api.base_url}/api/status").json()["processed"] > 300, timeout=30,
                   what="work under way")
        assert put_concurrency(api, 1).status_code == 200
        wait_until(lambda: len(job_workers(live_stack)) == 1, timeout=5 + 30, what="1 job worker")
        final = wait_until(lambda: (s := api.get(f"{api.base_url}/api/status").json())["state"] == "completed" and s,
                           timeout=90, what="completion")
        assert (final["processed"], final["failed"], final["enqueued"]) == (3000, 0, 3000)
    finally:
        put_concurrency(api, 2)
        wait_until(lambda: len(job_workers(live_stack)) == 2, timeout=10, what="2 job workers again")


def test_workers_heartbeat_and_are_listed_with_their_state(api):
    api.post(f"{api.base_url}/api/run", json={"x": 12000, "y": 1, "total": 50}, timeout=10)
    fleet = wait_until(lambda: (f := api.get(f"{api.base_url}/api/workers").json())["workers"] and f, timeout=30,
                       what="a heartbeat")
    assert fleet["down_after_s"] == 120
    assert all(w["state"] in ("idle", "busy", "down") for w in fleet["workers"])
    assert any(w["jobs_done"] > 0 or w["state"] == "busy" for w in
               wait_until(lambda: [w for w in api.get(f"{api.base_url}/api/workers").json()["workers"]
                                   if w["jobs_done"] > 0], timeout=30, what="jobs counted"))


def test_a_poison_message_reaches_the_dlq_with_its_reason_and_can_be_redriven(api, aws):
    jobs_url = aws["sqs"].get_queue_url(QueueName=JOBS_QUEUE.name)["QueueUrl"]
    dlq_url = aws["sqs"].get_queue_url(QueueName=JOBS_DLQ.name)["QueueUrl"]
    drain(aws, dlq_url)
    message_id = aws["sqs"].send_message(QueueUrl=jobs_url, MessageBody="{this is not a job")["MessageId"]
    # Five receives, one after another: an unparseable message is given no backoff.
    listing = wait_until(
        lambda: (d := api.get(f"{api.base_url}/api/dlq", headers=ADMIN, timeout=10).json())["messages"] and d,
        timeout=90, interval=1, what="the poison message in the DLQ")
    [dead] = [m for m in listing["messages"] if m["message_id"] == message_id]
    assert dead["body"] == "{this is not a job" and "unparseable message" in dead["reason"]
    assert api.get(f"{api.base_url}/api/dlq", timeout=10).status_code == 401
    moved = api.post(f"{api.base_url}/api/dlq/redrive", headers=ADMIN, timeout=10).json()
    assert moved == {"moved": 1, "remaining": 0}
    # Back in the jobs queue it fails again, and the DLQ catches it again: nothing lost, nothing crashes.
    wait_until(lambda: api.get(f"{api.base_url}/api/dlq", headers=ADMIN, timeout=10).json()["count"] == 1,
               timeout=90, interval=1, what="the redriven message to return to the DLQ")
    drain(aws, dlq_url)


def drain(aws, url: str) -> None:
    """Empty a queue (PurgeQueue is allowed once a minute only)."""
    while batch := aws["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        aws["sqs"].delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
