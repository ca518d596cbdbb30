"""The typed jobs' store and the ledger's typed-job settlement: one suite on the in-memory twin and on DynamoDB (moto)."""
from datetime import datetime, timezone

import boto3
import pytest

from chalicelib.container import dynamo_ledger
from chalicelib.core.errors import DuplicateRequest, StaleWrite
from chalicelib.core.jobs import JobOutcome
from chalicelib.resources import RESULTS_TABLE, STATE_TABLE, TYPED_JOBS_TABLE
from chalicelib.typed import service as jobs
from chalicelib.typed.dynamo import DynamoTypedJobStore, typed_job_item
from chalicelib.typed.executors import REGISTRY
from chalicelib.typed.memory import MemoryTypedJobStore
from chalicelib.typed.models import TimelineEntry, TypedJob
from tests.fakes import memory_ledger

T0 = 1_800_000_000.0


@pytest.fixture(params=["memory", "moto"])
def stores(request):
    if request.param == "memory":
        store = MemoryTypedJobStore()
        yield store, memory_ledger(typed_jobs=store)
        return
    request.getfixturevalue("moto_aws")
    client = boto3.client("dynamodb")
    yield (DynamoTypedJobStore(client, TYPED_JOBS_TABLE.name, STATE_TABLE.name, RESULTS_TABLE.name),
           dynamo_ledger(client, RESULTS_TABLE.name, STATE_TABLE.name, TYPED_JOBS_TABLE.name))


def new_job(i, priority=3, caller="alice", at=T0, type="email", due=None) -> TypedJob:
    return TypedJob(id=f"j-{i:016x}", type=type, priority=priority, status="pending",
                   place="scheduled" if due else "queued", payload={"subject": f"item {i}"}, caller=caller,
                   created_at=at + i, scheduled_for=due, max_attempts=3,
                   timeline=[TimelineEntry(status="pending", at=at + i, note="created")])


def create(store, *job_list):
    for job in job_list:
        store.create(job, job.payload["subject"], None, job.created_at)
    return job_list


def admit_all(store, caller="alice", now=T0 + 100):
    items = store.backlog(caller, 1000)
    store.admit(caller, items, "body", now)
    return items


def outcome(job_id, attempt=1, caller="alice", finished=T0 + 200, **changes):
    fields = dict(job_id=job_id, group=caller, origin="typed", outcome="done", result={"ok": True}, attempt=attempt,
                  worker="w1", finished_at=finished)
    return JobOutcome(**{**fields, **changes})


def test_a_job_is_stored_pending_in_its_callers_backlog_and_read_back_whole(stores):
    store, _ = stores
    (job,) = create(store, new_job(1))
    assert store.get(job.id) == job
    assert store.get("j-ffffffffffffffff") is None
    assert [(c.caller, c.backlog, c.in_flight) for c in store.callers()] == [("alice", 1, 0)]


def test_an_idempotency_key_is_claimed_once_and_names_its_job_and_body(stores):
    store, _ = stores
    store.create(new_job(1), "a", ("alice", "k1", "hash-1"), T0)
    with pytest.raises(DuplicateRequest) as duplicate:
        store.create(new_job(2), "b", ("alice", "k1", "hash-2"), T0 + 1)
    assert (duplicate.value.job_id, duplicate.value.body_hash) == (new_job(1).id, "hash-1")
    assert store.get(new_job(2).id) is None
    store.create(new_job(3), "c", ("bob", "k1", "hash-3"), T0 + 2)  # keys are per caller


def test_the_backlog_is_highest_priority_first_then_oldest(stores):
    store, _ = stores
    create(store, new_job(1, priority=2), new_job(2, priority=5), new_job(3, priority=2), new_job(4, priority=5))
    assert [item.id for item in store.backlog("alice", 10)] == [new_job(i).id for i in (2, 4, 1, 3)]
    assert [item.id for item in store.backlog("alice", 1)] == [new_job(2).id]


def test_the_backlog_read_past_held_types_keeps_the_order_of_the_rest(stores):
    store, _ = stores
    create(store, *(new_job(i, type="email") for i in range(1, 40)), new_job(40, type="report"),
           new_job(41, type="notification"), new_job(42, type="report", priority=5))
    assert [item.id for item in store.backlog("alice", 3, frozenset({"type:email", "caller:alice"}))] == [
        new_job(42).id, new_job(40).id, new_job(41).id]
    assert [item.type for item in store.backlog("alice", 2, frozenset({"type:email", "type:report"}))] == [
        "notification"]
    assert len(store.backlog("alice", 50, frozenset({"caller:alice"}))) == 42  # only types are left out


def test_admission_moves_jobs_in_flight_once_with_their_message_in_the_outbox(stores):
    store, _ = stores
    create(store, new_job(1), new_job(2))
    items = store.backlog("alice", 2)
    key = store.admit("alice", items, "body", T0 + 5)
    with pytest.raises(StaleWrite):
        store.admit("alice", items, "body", T0 + 6)
    assert store.get(new_job(1).id).place == "admitted" and store.backlog("alice", 10) == []
    assert [(c.backlog, c.in_flight) for c in store.callers()] == [(0, 2)]
    assert store.outbox(T0 + 10) == [(key, "body")]


def test_start_and_cancel_race_and_exactly_one_of_them_wins(stores):
    store, _ = stores
    started, cancelled = create(store, new_job(1), new_job(2))
    admit_all(store)
    store.start(started.id, 1, "w1", T0 + 10)
    with pytest.raises(StaleWrite):
        store.cancel(started.model_copy(update={"place": "admitted"}), T0 + 11)
    store.cancel(store.get(cancelled.id), T0 + 10)
    with pytest.raises(StaleWrite):
        store.start(cancelled.id, 1, "w1", T0 + 11)
    assert store.get(started.id).status == "running" and store.get(cancelled.id).status == "cancelled"
    assert [(c.caller, c.in_flight) for c in store.callers()] == [("alice", 1)]  # the cancelled one's slot is free


def test_cancel_takes_a_job_out_of_wherever_it_waits(stores):
    store, _ = stores
    queued, scheduled = create(store, new_job(1), new_job(2, due=T0 + 500))
    store.cancel(queued, T0 + 3)
    store.cancel(scheduled, T0 + 3)
    assert store.backlog("alice", 10) == []
    assert store.promote_due(T0 + 1000, 100) == 0 and store.backlog("alice", 10) == []
    assert store.get(queued.id).timeline[-1].status == "cancelled"
    with pytest.raises(StaleWrite):
        store.cancel(store.get(queued.id).model_copy(update={"status": "pending", "place": "queued"}), T0 + 4)


def test_a_scheduled_job_joins_the_backlog_once_due_and_pausing_holds_admission(stores):
    store, _ = stores
    (job,) = create(store, new_job(1, due=T0 + 60))
    assert store.promote_due(T0 + 30, 100) == 0 and store.backlog("alice", 10) == []
    store.set_paused(True, T0 + 40)
    lease = store.take_lease("holder", T0 + 61, 10)
    assert store.promote_due(T0 + 61, 100) == 1  # promotes while paused: the switch holds admission, not the schedule
    assert lease is not None and lease.paused is True and store.paused() is True
    assert [i.id for i in store.backlog("alice", 10)] == [job.id] and store.get(job.id).place == "queued"
    store.set_paused(False, T0 + 62)
    store.release_lease("holder", lease, T0 + 62, 10, final=True)
    assert store.paused() is False and store.take_lease("holder", T0 + 63, 10).paused is False


def test_due_by_lists_when_scheduled_jobs_fall_due_earliest_first_until_they_are_promoted_a_page_at_a_time(stores):
    store, _ = stores
    create(store, new_job(1, due=T0 + 60), new_job(2, due=T0 + 30.5), new_job(3, due=T0 + 500), new_job(4))
    assert store.due_by(T0 + 100, 10) == [T0 + 30.5, T0 + 60]
    assert store.due_by(T0 + 100, 1) == [T0 + 30.5]
    assert store.promote_due(T0 + 100, 1) == 1  # a page of one: the earliest
    assert store.due_by(T0 + 100, 10) == [T0 + 60]


def test_an_outcome_settles_only_the_running_attempt_once(stores):
    store, ledger = stores
    (job,) = create(store, new_job(1))
    admit_all(store)
    store.start(job.id, 1, "w1", T0 + 10)
    assert len(ledger.record([outcome(job.id)], T0 + 20)) == 1
    assert len(ledger.record([outcome(job.id)], T0 + 21)) == 0  # a redelivery changes nothing
    done = store.get(job.id)
    assert (done.status, done.result, done.attempts, done.place) == ("completed", {"ok": True}, 1, "none")
    assert [(e.status, e.worker, e.attempt) for e in done.timeline] == [
        ("pending", None, 0), ("running", "w1", 1), ("completed", "w1", 1)]
    assert [(c.backlog, c.in_flight) for c in store.callers()] == [(0, 0)]


def test_settled_jobs_count_as_done_or_failed_and_are_sampled_with_their_queue_wait_newest_first(stores):
    store, ledger = stores
    first, second = create(store, new_job(1), new_job(2))  # created at T0 + 1 and T0 + 2
    admit_all(store)
    store.start(first.id, 1, "w1", T0 + 10)
    store.start(second.id, 1, "w1", T0 + 10)
    ledger.record([outcome(first.id, submitted_at=first.created_at, started_at=T0 + 10, finished=T0 + 20)], T0 + 20)
    ledger.record([outcome(second.id, submitted_at=second.created_at, started_at=T0 + 12, finished=T0 + 30,
                           outcome="failed", error="boom", result=None)], T0 + 30)
    assert [(c.caller, c.in_flight, c.done, c.failed) for c in store.callers()] == [("alice", 0, 1, 1)]
    assert [(s.finished_at, s.queue_wait_s) for s in store.settled("alice", 10)] == [
        (T0 + 30, pytest.approx(10.0)), (T0 + 20, pytest.approx(9.0))]
    assert [s.finished_at for s in store.settled("alice", 1)] == [T0 + 30]


def test_a_requeued_attempt_retries_and_a_final_failure_can_be_retried_by_an_admin(stores):
    store, ledger = stores
    (job,) = create(store, new_job(1))
    admit_all(store)
    store.start(job.id, 1, "w1", T0 + 10)
    store.requeue(job.id, 1, "w1", "retry in 1 s: boom", T0 + 11)
    with pytest.raises(StaleWrite):
        store.requeue(job.id, 1, "w1", "again", T0 + 12)
    store.start(job.id, 2, "w2", T0 + 13)
    assert len(ledger.record([outcome(job.id, attempt=1, outcome="failed", error="stale")], T0 + 14)) == 0
    assert len(ledger.record([outcome(job.id, attempt=2, outcome="failed", error="boom", result=None)], T0 + 14)) == 1
    failed = store.get(job.id)
    assert (failed.status, failed.error, failed.attempts) == ("failed", "boom", 2)
    store.retry(failed, T0 + 20)
    with pytest.raises(StaleWrite):
        store.retry(failed, T0 + 21)
    again = store.get(job.id)
    assert (again.status, again.place, again.attempts, again.error) == ("pending", "queued", 0, None)
    admit_all(store, now=T0 + 30)
    store.start(job.id, 1, "w1", T0 + 31)
    assert len(ledger.record([outcome(job.id)], T0 + 32)) == 1  # the failed outcome no longer blocks the new one
    assert store.get(job.id).status == "completed"


def test_stats_count_each_status_and_type_and_the_minutes_outcomes(stores):
    store, ledger = stores
    done, failed, waiting = create(store, new_job(1), new_job(2, type="report"), new_job(3, type="report"))
    store.backlog("alice", 10)
    store.admit("alice", [i for i in store.backlog("alice", 10) if i.id != waiting.id], "body", T0 + 5)
    for job in (done, failed):
        store.start(job.id, 1, "w", T0 + 6)
    ledger.record([outcome(done.id), outcome(failed.id, outcome="failed", error="x")], T0 + 120)
    minute = int(T0 + 120) // 60 * 60
    stats = store.stats(minute - 3600, minute)
    assert stats.total == 3 and stats.by_type == {"email": 1, "report": 2}
    assert {k: v for k, v in stats.by_status.items() if v} == {"pending": 1, "completed": 1, "failed": 1}
    assert stats.minutes == {minute: (1, 1)}


def test_outcomes_of_several_callers_settle_together_and_each_moves_its_own_counts(stores):
    store, ledger = stores
    jobs = create(store, new_job(1), new_job(2), new_job(3, caller="bob"), new_job(4, caller="carol", type="report"))
    for caller in ("alice", "bob", "carol"):
        admit_all(store, caller, T0 + 5)
    for job in jobs:
        store.start(job.id, 1, "w", T0 + 6)
    ledger.record([outcome(jobs[0].id)], T0 + 110)
    # One call with each caller's outcomes, alice's first one again (a redelivery): it alone is dropped.
    recorded = ledger.record([outcome(jobs[0].id), outcome(jobs[3].id, caller="carol", outcome="failed", error="x"),
                              outcome(jobs[1].id), outcome(jobs[2].id, caller="bob")], T0 + 120)
    assert sorted(o.job_id for o in recorded) == sorted(job.id for job in jobs[1:])
    counts = {c.caller: (c.in_flight, c.done, c.failed) for c in store.callers()}
    assert counts == {"alice": (0, 2, 0), "bob": (0, 1, 0), "carol": (0, 0, 1)}
    minute = int(T0 + 120) // 60 * 60
    stats = store.stats(minute - 3600, minute)
    assert {k: v for k, v in stats.by_status.items() if v} == {"completed": 3, "failed": 1}
    assert stats.minutes == {minute - 60: (1, 0), minute: (2, 1)}


def walk(store, params):
    seen, token = [], None
    while True:
        page = jobs.list_jobs(store, REGISTRY, {**params, **({"next": token} if token else {})})
        seen += [job["id"] for job in page["jobs"]]
        token = page["next"]
        if token is None:
            return seen


def seed(store, job_list):
    """Store jobs as `create` does for the listing, which reads only their items. On moto, written in batches:
    moto copies every table a transaction touches, so 1,000 creates would take minutes."""
    if isinstance(store, MemoryTypedJobStore):
        return create(store, *job_list)
    client = boto3.client("dynamodb")
    for offset in range(0, len(job_list), 25):
        pending = {TYPED_JOBS_TABLE.name: [{"PutRequest": {"Item": typed_job_item(job, job.payload["subject"])}}
                                      for job in job_list[offset : offset + 25]]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None
    return job_list


def test_walking_every_page_of_1000_jobs_returns_each_exactly_once_in_order(stores):
    store, _ = stores
    created = seed(store, [new_job(i, priority=i % 5 + 1, type=("email", "report")[i % 2]) for i in range(1000)])
    newest_first = walk(store, {"limit": "100"})
    assert newest_first == [job.id for job in reversed(created)]
    by_priority = walk(store, {"status": "pending", "sort": "priority", "order": "asc", "limit": "37"})
    assert len(by_priority) == len(set(by_priority)) == 1000
    assert [store.get(i).priority for i in by_priority[::100]] == sorted(store.get(i).priority for i in by_priority[::100])
    reports = walk(store, {"status": "pending", "type": "report", "q": "item 1", "limit": "9"})
    assert sorted(reports) == sorted(j.id for j in created if j.type == "report" and "item 1" in j.payload["subject"])


def test_listing_queries_a_gsi_and_never_scans(request):
    request.getfixturevalue("moto_aws")
    client = boto3.client("dynamodb")
    calls = []
    client.meta.events.register("provide-client-params.dynamodb.*", lambda model, params, **_: calls.append(
        (model.name, params.get("IndexName"))))
    store = DynamoTypedJobStore(client, TYPED_JOBS_TABLE.name, STATE_TABLE.name, RESULTS_TABLE.name)
    create(store, *(new_job(i) for i in range(5)))
    calls.clear()
    for params in ({}, {"status": "pending"}, {"type": "email", "sort": "priority"}, {"q": "item", "priority": "3"},
                   {"status": "failed", "type": "email", "created_from": "2020-01-01T00:00:00Z"}):
        jobs.list_jobs(store, REGISTRY, params)
    assert {name for name, _ in calls} == {"Query"}
    assert {index for _, index in calls} == {"by-all-created", "by-status-created", "by-type-priority"}


def test_a_created_range_open_at_either_end_lists_the_jobs_inside_it(stores):
    store, _ = stores
    created = create(store, *(new_job(i) for i in range(5)))
    up_to_2 = {"created_to": datetime.fromtimestamp(T0 + 2, timezone.utc).isoformat()}
    from_3 = {"created_from": datetime.fromtimestamp(T0 + 3, timezone.utc).isoformat()}
    assert walk(store, up_to_2) == [job.id for job in reversed(created[:3])]  # both ends are inclusive
    assert walk(store, from_3) == [job.id for job in reversed(created[3:])]
    assert walk(store, {**up_to_2, "sort": "priority"}) == walk(store, {**up_to_2, "order": "asc"})[::-1]
    assert walk(store, {"created_to": "1969-12-31T23:59:59Z"}) == []  # before any job, and any key


def test_a_callers_weight_is_one_until_set_and_then_shows_beside_its_counts(stores):
    store, _ = stores
    create(store, new_job(1))
    assert [(c.caller, c.backlog, c.weight) for c in store.callers()] == [("alice", 1, 1.0)]
    store.set_weight("alice", 3.0, T0 + 1)
    assert [(c.caller, c.backlog, c.weight) for c in store.callers()] == [("alice", 1, 3.0)]


def test_a_messages_jobs_start_together_and_one_cancelled_meanwhile_is_left_out(stores):
    store, _ = stores
    first, cancelled, third = create(store, new_job(1), new_job(2), new_job(3))
    admit_all(store)
    store.cancel(store.get(cancelled.id), T0 + 10)
    started = store.start_many([(first.id, 1), (cancelled.id, 1), (third.id, 1)], "w1", T0 + 11)
    assert started == {first.id, third.id}
    assert [store.get(j.id).status for j in (first, cancelled, third)] == ["running", "cancelled", "running"]
    assert store.get(first.id).timeline[-1].worker == "w1"
    by_status = store.stats(0, 0).by_status
    assert (by_status.get("running"), by_status.get("pending", 0)) == (2, 0)  # the counters moved once per start
    assert store.start_many([(first.id, 1)], "w2", T0 + 12) == set()  # started already: not again


def test_the_populate_turn_is_taken_once_until_its_next_time_comes(stores):
    store, _ = stores
    assert store.take_populate_turn(T0, T0 + 570)  # the first turn
    assert not store.take_populate_turn(T0 + 1, T0 + 571)  # a duplicate fire of the same minute
    assert not store.take_populate_turn(T0 + 569, T0 + 1139)
    assert store.take_populate_turn(T0 + 570, T0 + 1140)
    assert not store.take_populate_turn(T0 + 600, T0 + 1170)
