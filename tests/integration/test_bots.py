"""Bots end to end: reference bots (infra/bot.py) as OS processes pull bot jobs from the live stack, beside the
Lambda workers; each job settles once, and a bot killed with SIGKILL loses nothing."""
import os
import signal
import subprocess
import sys
import uuid

import pytest

from chalicelib.aws.codec import from_item, to_item
from chalicelib.resources import RESULTS_TABLE, STATE_TABLE
from tests.conftest import wait_until
from tests.integration.test_jobs import email, submit_all

pytestmark = pytest.mark.integration
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def start_bot(live_stack):
    """Reference bots as OS processes, each with a 5 s lease and a beat a second; stopped after the test."""
    started = []

    def start(name, duration, failure_rate=0.0):
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.bot", "--api", live_stack.api_url, "--name", name, "--lease", "5",
             "--heartbeat", "1", "--wait", "2", "--duration", str(duration), "--failure-rate", str(failure_rate)],
            cwd=ROOT, env=live_stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started.append(process)
        line = process.stdout.readline()
        assert "registered as" in line, line
        return process, line.split("registered as")[1].strip()

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def job(api, job_id):
    return api.get(f"{api.base_url}/api/jobs/{job_id}", timeout=10).json()


def results_of(aws, job_ids):
    found = {}
    for job_id in job_ids:
        item = aws["dynamodb"].get_item(TableName=RESULTS_TABLE.name, Key=to_item({"job_id": job_id}),
                                        ConsistentRead=True).get("Item")
        if item:
            found[job_id] = from_item(item)
    return found


def bot_counts(aws, caller):
    item = aws["dynamodb"].get_item(TableName=STATE_TABLE.name, Key=to_item({"pk": "BCALLERS", "sk": caller}),
                                    ConsistentRead=True)["Item"]
    return {k: int(from_item(item).get(k, 0)) for k in ("backlog", "in_flight", "done", "failed")}


def test_three_bots_and_the_lambda_workers_drain_a_mixed_backlog_each_job_settled_once(api, aws, start_bot):
    tag, caller = f"bots-{uuid.uuid4().hex[:6]}", f"bots-{uuid.uuid4().hex[:6]}"
    ids = {start_bot(f"{tag}-{i}", duration=0.2, failure_rate=0.2)[1] for i in range(3)}
    bot_jobs = submit_all(api, [email(tag, i, priority=1 + i % 5, target="bot") for i in range(30)], caller)
    lambda_jobs = submit_all(api, [email(tag, 100 + i) for i in range(10)], caller)
    every = [j["id"] for j in bot_jobs + lambda_jobs]
    final = lambda: [j for j in (job(api, i) for i in every) if j["status"] in ("completed", "failed")]
    wait_until(lambda: len(final()) == len(every), timeout=180, interval=1, what="every job to settle")
    jobs = {j["id"]: j for j in final()}
    results = results_of(aws, every)
    assert set(results) == set(every)  # one result item per job
    for j in bot_jobs:
        settled = jobs[j["id"]]
        ends = [e for e in settled["timeline"] if e["status"] in ("completed", "failed")]
        assert len(ends) == 1 and ends[0]["worker"] in ids and settled["bot"] == ends[0]["worker"], settled
        assert results[j["id"]]["worker"] == settled["bot"]
    for j in lambda_jobs:
        assert jobs[j["id"]]["bot"] is None and results[j["id"]]["worker"] not in ids
    counts = bot_counts(aws, caller)
    completed = sum(jobs[j["id"]]["status"] == "completed" for j in bot_jobs)
    assert counts == {"backlog": 0, "in_flight": 0, "done": completed, "failed": 30 - completed}
    bots = [b for b in api.get(f"{api.base_url}/api/bots", timeout=10).json()["bots"] if b["id"] in ids]
    assert sum(b["jobs_done"] for b in bots) == completed
    assert sum(1 for j in bot_jobs for e in jobs[j["id"]]["timeline"] if e["note"] and "retry in" in e["note"]
               and e["status"] == "pending") == sum(b["jobs_failed"] for b in bots) - (30 - completed)


def test_a_bot_killed_while_it_holds_a_job_loses_nothing_the_job_is_redone_by_another_and_counted_once(
        api, aws, start_bot):
    tag, caller = f"kill-{uuid.uuid4().hex[:6]}", f"kill-{uuid.uuid4().hex[:6]}"
    doomed, doomed_id = start_bot(f"{tag}-doomed", duration=600)
    (submitted,) = submit_all(api, [email(tag, 0, target="bot")], caller)
    wait_until(lambda: job(api, submitted["id"])["bot"] == doomed_id, timeout=30, what="the doomed bot's claim")
    doomed.kill()  # SIGKILL: no goodbye
    doomed.wait()
    _, rescuer_id = start_bot(f"{tag}-rescuer", duration=0.2)
    wait_until(lambda: job(api, submitted["id"])["status"] == "completed", timeout=60, interval=0.5,
               what="the job to be redone by the other bot")
    done = job(api, submitted["id"])
    assert (done["bot"], done["attempts"]) == (rescuer_id, 2)
    assert any(e["note"] and "ran out" in e["note"] for e in done["timeline"])
    assert results_of(aws, [submitted["id"]])[submitted["id"]]["worker"] == rescuer_id
    assert bot_counts(aws, caller) == {"backlog": 0, "in_flight": 0, "done": 1, "failed": 0}
    lost = api.get(f"{api.base_url}/api/bots/{doomed_id}", timeout=10).json()
    assert (lost["leases_lost"], lost["jobs"], lost["history"][0]["event"]) == (1, [], "lease_lost")


def running_bot_processes(live_stack):
    """The reference bots the stack keeps for its bot count, as OS processes that are running."""
    return {name: live_stack.services[name].process for name in list(live_stack.reference_bots)
            if name in live_stack.services and live_stack.services[name].process.poll() is None}


def test_the_local_stack_starts_and_stops_reference_bot_processes_to_match_the_bot_count(api, live_stack):
    admin = {"Authorization": "Bearer local-admin-token"}
    assert api.get(f"{api.base_url}/api/bots/count", timeout=10).json() == {"count": 0}
    try:
        assert api.put(f"{api.base_url}/api/bots/count", json={"count": 2}, headers=admin, timeout=10).status_code == 200
        processes = wait_until(lambda: (found := running_bot_processes(live_stack)) and len(found) == 2 and found,
                               timeout=30, what="two reference bot processes")
        for name, process in processes.items():
            assert os.kill(process.pid, 0) is None  # a real process, alive
        def listed_up() -> list[dict]:
            return [b for b in api.get(f"{api.base_url}/api/bots", timeout=10).json()["bots"]
                    if b["name"] in processes and b["state"] != "down"]

        # Both, not the first to register (wait_until returns at the first truthy answer).
        wait_until(lambda: len(listed_up()) == 2, timeout=30, what="both bots registered and listed up")

        assert api.put(f"{api.base_url}/api/bots/count", json={"count": 1}, headers=admin, timeout=10).status_code == 200
        wait_until(lambda: len(running_bot_processes(live_stack)) == 1, timeout=30, what="one bot left")
        newest = max(processes, key=lambda name: int(name.rsplit("-", 1)[1]))
        wait_until(lambda: processes[newest].poll() is not None, timeout=30, what="the newest bot's process to exit")
        assert set(running_bot_processes(live_stack)) == set(processes) - {newest}
        # Stopped with SIGTERM, it deregistered on its way out: gone from the list, not left `idle` until `down`.
        names = {b["name"] for b in api.get(f"{api.base_url}/api/bots", timeout=10).json()["bots"]}
        assert newest not in names and set(processes) - {newest} <= names
    finally:
        api.put(f"{api.base_url}/api/bots/count", json={"count": 0}, headers=admin, timeout=10)
        wait_until(lambda: not running_bot_processes(live_stack), timeout=30, what="no reference bot left")
