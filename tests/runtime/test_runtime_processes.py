"""The supervisor's promises about processes: readiness, restarts, and a clean stop."""
from __future__ import annotations

import os
import signal
import sys
import time
import uuid

import pytest

from tests.processes import hangs_under_sigterm_bursts
from tests.runtime.runtime_harness import REPO_ROOT, eventually, is_alive

pytestmark = pytest.mark.runtime


def test_the_readiness_line_counts_workers_per_queue_capped_by_maximum_concurrency(runtime):
    prefix = runtime.queues.prefix
    assert runtime.ready_line() == (
        f"runtime ready: 2 worker(s) for {prefix}-jobs, 1 worker(s) for {prefix}-batched, "
        f"2 worker(s) for {prefix}-slow, 1 stream reader for {prefix}-changes, 1 scheduler for 2 schedule(s)"
    )


def test_the_supervisor_restarts_a_worker_killed_with_sigkill_and_processing_continues(launch_runtime, tag):
    runtime = launch_runtime(workers=1)
    [victim] = runtime.children("--source jobs")

    os.kill(victim, signal.SIGKILL)

    replacement = eventually(
        lambda: [pid for pid in runtime.children("--source jobs") if pid != victim],
        15,
        runtime.explain("no new jobs worker replaced the killed one"),
    )
    assert not is_alive(victim)
    # The replacement is the only jobs worker, so it must be the one that handles this.
    runtime.queues.send("jobs", {"tag": tag})
    [invocation] = eventually(
        lambda: runtime.invocations_with(tag), 15, runtime.explain("the message sent after the kill was not handled")
    )
    assert invocation["pid"] == replacement[0]
    assert runtime.process.poll() is None


def test_sigint_lets_a_busy_worker_finish_its_batch_and_then_stops_every_child(launch_runtime, tag):
    runtime = launch_runtime(workers=2)
    children = runtime.children()
    # two jobs, one batched (maximum_concurrency=1), two slow workers, one stream reader, one scheduler
    assert len(children) == 7, children
    [message_id] = runtime.queues.send("slow", {"tag": tag, "sleep": 1})
    eventually(lambda: runtime.invocations_with(tag), 10, runtime.explain("the slow message was not handled"))

    assert runtime.stop(signal.SIGINT) == 0

    assert [pid for pid in children if is_alive(pid)] == []
    assert [record["message_id"] for record in runtime.records("finished")] == [message_id]
    assert runtime.queues.messages_in_queue("slow") == 0  # deleted before the worker exited


def test_sigterms_in_quick_succession_never_hang_the_supervisor_or_its_children(tmp_path):
    # A supervisor and its scheduler, on an app with one hourly schedule and no AWS to reach. Their handlers
    # used to set a threading.Event (and log), which deadlocks when the main thread holds the Event's lock.
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text('{"version": "2.0", "app_name": "quiet", "stages": {"dev": {}}}')
    (tmp_path / "app.py").write_text(
        "from chalice import Chalice\n\napp = Chalice(app_name='quiet')\n\n\n"
        "@app.schedule('rate(1 hour)')\ndef hourly(event):\n    pass\n"
    )
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "PACER_RUNTIME_LOG_LEVEL": "WARNING"}
    hung = hangs_under_sigterm_bursts(
        [sys.executable, "-m", "infra.runtime", "--project-dir", str(tmp_path), "--stage", "dev"],
        "runtime ready", trials=10, cwd=REPO_ROOT, env=env,
    )
    assert hung == 0, f"{hung} of 10 runtimes hung after a burst of SIGTERMs"


# The API allows up to 100; with steps, only a few of them are started in the 2 s before the step down.
BIG_CONCURRENCY = 100


def test_a_big_step_up_then_down_is_followed_within_5_s(launch_runtime, dynamodb):
    table = f"control-{uuid.uuid4().hex[:10]}"
    dynamodb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )

    def set_concurrency(n: int) -> None:
        dynamodb.put_item(TableName=table, Item={
            "pk": {"S": "RUNTIME#concurrency"}, "sk": {"S": "jobs"}, "maximum_concurrency": {"N": str(n)}})

    runtime = launch_runtime(workers=1, control_table=table)
    try:
        set_concurrency(BIG_CONCURRENCY)
        eventually(lambda: len(runtime.children("--source jobs")) > 1, 5,
                   runtime.explain("the runtime did not start scaling up"))
        time.sleep(2)
        set_concurrency(2)
        changed = time.monotonic()
        eventually(lambda: len(runtime.children("--source jobs")) == 2, 5,
                   lambda: f"{len(runtime.children('--source jobs'))} jobs workers 5 s after the step down\n"
                           + runtime.explain("")()[-3000:])
        print(f"down to 2 in {time.monotonic() - changed:.1f} s")
        time.sleep(1.5)  # and it stays there: nothing started late
        assert len(runtime.children("--source jobs")) == 2
    finally:
        runtime.process.send_signal(signal.SIGTERM)
        runtime.process.wait(timeout=60)



def test_each_worker_calls_the_start_hook_with_its_source_before_it_is_ready(launch_runtime):
    runtime = launch_runtime(workers=2, worker_start_hook="app.worker_started")
    workers = runtime.children("infra.runtime.worker")
    # Ready means every worker has called it: no waiting.
    called = {record["pid"]: record["source"] for record in runtime.records("worker_started")}
    assert called == {pid: command.split("--source ")[1].split()[0] for pid, command in workers.items()}
    assert sorted(called.values()) == ["batched", "jobs", "jobs", "slow", "slow"]
