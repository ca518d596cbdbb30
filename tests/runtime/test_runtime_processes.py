"""The supervisor's promises about processes: readiness, restarts, and a clean stop."""
from __future__ import annotations

import os
import signal

import pytest

from tests.runtime.runtime_harness import eventually, is_alive

pytestmark = pytest.mark.runtime


def test_the_readiness_line_counts_workers_per_queue_capped_by_maximum_concurrency(runtime):
    prefix = runtime.queues.prefix
    assert runtime.ready_line() == (
        f"runtime ready: 2 worker(s) for {prefix}-jobs, 1 worker(s) for {prefix}-batched, "
        f"2 worker(s) for {prefix}-slow, 1 scheduler for 2 schedule(s)"
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
    # two jobs, one batched (maximum_concurrency=1), two slow workers, one scheduler
    assert len(children) == 6, children
    [message_id] = runtime.queues.send("slow", {"tag": tag, "sleep": 1})
    eventually(lambda: runtime.invocations_with(tag), 10, runtime.explain("the slow message was not handled"))

    assert runtime.stop(signal.SIGINT) == 0

    assert [pid for pid in children if is_alive(pid)] == []
    assert [record["message_id"] for record in runtime.records("finished")] == [message_id]
    assert runtime.queues.messages_in_queue("slow") == 0  # deleted before the worker exited
