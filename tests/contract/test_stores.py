"""One suite, two implementations: the in-memory twins and the DynamoDB/SQS adapters on moto.

If the fakes drift from the real adapters' conditions, these fail.
"""
import json

import boto3
import pytest

from chalicelib.aws.memory import MemoryQueue
from chalicelib.aws.sqs import SqsQueue
from chalicelib.container import dynamo_ledger
from chalicelib.core.errors import RunAlreadyActive, StaleWrite
from chalicelib.core.jobs import JobOutcome, OutboundMessage
from chalicelib.dlq.dynamo import DynamoFailureLog
from chalicelib.dlq.memory import MemoryFailureLog
from chalicelib.fleet.dynamo import DynamoFleetStore
from chalicelib.fleet.memory import MemoryFleetStore
from chalicelib.fleet.models import WorkerBeat
from chalicelib.resources import JOBS_DLQ, JOBS_QUEUE, RESULTS_TABLE, STATE_TABLE, TYPED_JOBS_TABLE
from chalicelib.runs.dynamo import DynamoRunStore
from chalicelib.runs.memory import MemoryRunStore
from chalicelib.runs.models import Run
from tests.fakes import memory_ledger

T0 = 1_800_000_000.0


@pytest.fixture(params=["memory", "moto"])
def stores(request):
    if request.param == "memory":
        runs = MemoryRunStore()
        yield runs, memory_ledger(runs=runs)
        return
    request.getfixturevalue("moto_aws")
    client = boto3.client("dynamodb")
    yield (DynamoRunStore(client, STATE_TABLE.name),
           dynamo_ledger(client, RESULTS_TABLE.name, STATE_TABLE.name, TYPED_JOBS_TABLE.name))


def a_run(run_id="r1", **changes) -> Run:
    fields = dict(run_id=run_id, state="running", x=600, y=1.0, anchor_at=T0, tick_token="t0", tick_at=T0,
                  started_at=T0, updated_at=T0)
    fields.update(changes)
    return Run(**fields)


def outcome(run_id, index, kind="done") -> JobOutcome:
    return JobOutcome(job_id=f"{run_id}:{index}", group=run_id, number="12", outcome=kind,
                      factors=["2", "2", "3"] if kind == "done" else [], error=None if kind == "done" else "boom",
                      attempt=1, worker="w", finished_at=T0)


def test_a_created_run_becomes_current_and_reads_back_equal(stores):
    runs, _ = stores
    assert runs.current() is None
    runs.create_current(a_run(y=0.25))
    assert runs.current() == a_run(y=0.25)


def test_a_run_cannot_replace_an_active_one_but_can_replace_a_stopped_one(stores):
    runs, _ = stores
    runs.create_current(a_run("r1"))
    with pytest.raises(RunAlreadyActive):
        runs.create_current(a_run("r2"))
    runs.stop(runs.current(), T0 + 1)
    runs.create_current(a_run("r3"))
    assert runs.current().run_id == "r3"


def test_advance_claims_jobs_records_the_slice_and_passes_the_token(stores):
    runs, _ = stores
    runs.create_current(a_run())
    runs.advance(runs.current(), end=25, next_token="t1", now=T0 + 0.4)
    run = runs.current()
    assert (run.enqueued, run.tick_token) == (25, "t1")
    assert [(s.start, s.end) for s in runs.slices("r1")] == [(0, 25)]
    assert [(b.t, b.enqueued) for b in runs.throughput("r1", int(T0) - 5, int(T0) + 5)] == [(int(T0), 25)]
    runs.forget_slice("r1", 0)
    assert runs.slices("r1") == []


def test_advance_from_a_stale_read_is_refused_and_changes_nothing(stores):
    runs, _ = stores
    runs.create_current(a_run())
    stale = runs.current()
    runs.advance(stale, end=10, next_token="t1", now=T0)
    with pytest.raises(StaleWrite):
        runs.advance(stale, end=20, next_token="t2", now=T0)
    assert (runs.current().enqueued, runs.current().tick_token) == (10, "t1")


def test_a_rate_change_re_anchors_at_the_cursor_unless_the_cursor_moved(stores):
    runs, _ = stores
    runs.create_current(a_run())
    runs.advance(runs.current(), end=10, next_token="t1", now=T0)
    seen = runs.current()
    runs.change_rate(seen, x=60, y=2.5, anchor_at=T0 + 3, now=T0 + 2)
    run = runs.current()
    assert (run.x, run.y, run.anchor_index, run.anchor_at, run.tick_token) == (60, 2.5, 10, T0 + 3, "t1")
    with pytest.raises(StaleWrite):
        runs.advance(seen, end=20, next_token="t2", now=T0 + 3)  # planned on the old rate
    runs.advance(runs.current(), end=12, next_token="t2", now=T0 + 3)
    with pytest.raises(StaleWrite):
        runs.change_rate(seen, x=1, y=1, anchor_at=T0, now=T0 + 3)  # the cursor moved since


def test_stop_needs_a_running_run(stores):
    runs, _ = stores
    runs.create_current(a_run())
    runs.stop(runs.current(), T0 + 5)
    run = runs.current()
    assert (run.state, run.stopped_at, run.tick_token) == ("stopped", T0 + 5, "")
    with pytest.raises(StaleWrite):
        runs.stop(run, T0 + 6)


def test_outcomes_are_recorded_once_and_move_the_counters_exactly_once(stores):
    runs, ledger = stores
    runs.create_current(a_run())
    assert len(ledger.record([outcome("r1", 0), outcome("r1", 1), outcome("r1", 2, "failed")], T0)) == 3
    duplicate, new = outcome("r1", 1), outcome("r1", 3)
    assert ledger.record([duplicate, new], T0 + 1) == [new]  # only the new outcome comes back: job 1 had one
    assert ledger.record([outcome("r1", 0, "failed")], T0 + 2) == []  # one outcome per job, ever
    run = runs.current()
    assert (run.processed, run.failed, run.settled) == (3, 1, 4)
    buckets = runs.throughput("r1", int(T0), int(T0) + 2)
    assert sum(b.processed for b in buckets) == 3 and sum(b.failed for b in buckets) == 1


def test_more_outcomes_than_one_transaction_holds_are_all_recorded(stores):
    runs, ledger = stores
    runs.create_current(a_run())
    assert len(ledger.record([outcome("r1", i) for i in range(130)], T0)) == 130
    assert runs.current().processed == 130


@pytest.fixture(params=["memory", "moto"])
def queue(request):
    if request.param == "memory":
        q = MemoryQueue()
        yield q, lambda: [m.body for m in q.sent]
        return
    request.getfixturevalue("moto_aws")
    sqs = boto3.client("sqs")
    q = SqsQueue(sqs, JOBS_QUEUE.name)

    def received():
        bodies = []
        while batch := sqs.receive_message(QueueUrl=q.url, MaxNumberOfMessages=10).get("Messages", []):
            bodies += [m["Body"] for m in batch]
        return bodies

    yield q, received


def test_a_queue_sends_every_message_in_batches(queue):
    q, received = queue
    q.send([OutboundMessage(body=json.dumps({"n": i})) for i in range(23)])
    assert sorted(json.loads(b)["n"] for b in received()) == list(range(23))


@pytest.fixture(params=["memory", "moto"])
def fleet_and_failures(request):
    if request.param == "memory":
        yield MemoryFleetStore(), MemoryFailureLog()
        return
    request.getfixturevalue("moto_aws")
    client = boto3.client("dynamodb")
    yield DynamoFleetStore(client, STATE_TABLE.name), DynamoFailureLog(client, STATE_TABLE.name)


def test_worker_beats_are_kept_per_worker_and_the_latest_wins(fleet_and_failures):
    fleet, _ = fleet_and_failures
    fleet.save_beat(WorkerBeat(worker_id="w1", state="busy", started_at=T0, last_beat_at=T0, jobs_done=3))
    fleet.save_beat(WorkerBeat(worker_id="w1", state="idle", started_at=T0, last_beat_at=T0 + 10, jobs_done=9))
    fleet.save_beat(WorkerBeat(worker_id="w2", state="idle", started_at=T0, last_beat_at=T0 + 10))
    beats = {b.worker_id: b for b in fleet.beats()}
    assert (beats["w1"].state, beats["w1"].jobs_done, beats["w1"].last_beat_at) == ("idle", 9, T0 + 10)
    assert set(beats) == {"w1", "w2"}


def test_the_desired_concurrency_reads_back_per_source(fleet_and_failures):
    fleet, _ = fleet_and_failures
    assert fleet.concurrency("process_jobs") is None
    fleet.set_concurrency("process_jobs", 4, T0)
    fleet.set_concurrency("process_jobs", 3, T0 + 1)
    assert fleet.concurrency("process_jobs") == 3


def test_the_desired_bot_count_reads_back_apart_from_the_worker_concurrency(fleet_and_failures):
    fleet, _ = fleet_and_failures
    assert fleet.bot_count() is None
    fleet.set_bot_count(3, T0)
    fleet.set_bot_count(0, T0 + 1)
    assert fleet.bot_count() == 0  # zero is a count, not "unset"
    assert fleet.concurrency("process_jobs") is None  # the runtime's partition holds no item for the bots


def test_failure_reasons_are_found_by_message_id(fleet_and_failures):
    _, failures = fleet_and_failures
    failures.record([(f"m{i}", 1, f"reason {i}") for i in range(30)], T0)
    failures.record([("m3", 2, "a later reason")], T0 + 1)
    found = failures.reasons(["m3", "m29", "unknown"])
    assert found == {"m3": "a later reason", "m29": "reason 29"}


def test_a_dead_letter_queue_can_be_peeked_without_losing_messages_and_moved(moto_aws):
    sqs = boto3.client("sqs")
    dlq, jobs = SqsQueue(sqs, JOBS_DLQ.name), SqsQueue(sqs, JOBS_QUEUE.name)
    dlq.send([OutboundMessage(body=f"poison {i}") for i in range(15)])
    peeked = dlq.peek(12)
    assert len(peeked) == len({m.message_id for m in peeked}) == 12
    assert dlq.depth()["visible"] == 15  # a peek leaves every message where it was
    assert dlq.move_to(jobs, 100) == 15
    assert dlq.depth()["visible"] == 0 and jobs.depth()["visible"] == 15
