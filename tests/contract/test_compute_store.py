"""The compute store and the ledger's compute settlement: one suite on the in-memory twin and on DynamoDB (moto)."""

import boto3
import pytest

from chalicelib.admission.models import Lease
from chalicelib.compute.dynamo import DynamoComputeStore
from chalicelib.compute.memory import MemoryComputeStore
from chalicelib.compute.models import ComputeBacklogItem, ComputeRequest
from chalicelib.container import dynamo_ledger
from chalicelib.core.errors import StaleWrite
from chalicelib.core.jobs import JobOutcome
from chalicelib.resources import RESULTS_TABLE, STATE_TABLE, TYPED_JOBS_TABLE
from tests.fakes import memory_ledger

T0 = 1_800_000_000.0


@pytest.fixture(params=["memory", "moto"])
def stores(request):
    if request.param == "memory":
        store = MemoryComputeStore()
        yield store, memory_ledger(compute=store)
        return
    request.getfixturevalue("moto_aws")
    client = boto3.client("dynamodb")
    yield DynamoComputeStore(client, STATE_TABLE.name), dynamo_ledger(client, RESULTS_TABLE.name, STATE_TABLE.name, TYPED_JOBS_TABLE.name)


def req(i, number, caller="alice", at=T0):
    return ComputeRequest(id=f"c-{i}", caller=caller, number=number, owner=True, submitted_at=at + i)


def outcome(item: ComputeBacklogItem, caller="alice", finished=T0 + 100, **changes):
    fields = dict(job_id=item.id, group=caller, origin="compute", number=item.number, outcome="done",
                  factors=["7", "11"], attempt=1, worker="w", finished_at=finished, submitted_at=item.submitted_at,
                  started_at=finished - 1)
    return JobOutcome(**{**fields, **changes})


def test_the_first_request_for_a_number_claims_it_and_later_ones_are_followers(stores):
    store, _ = stores
    assert store.submit(req(1, "77"), T0).owner is True
    assert store.submit(req(2, "77", caller="bob"), T0).owner is False
    assert store.request("c-2").owner is False and store.request("c-2").caller == "bob"
    assert store.number("77").job_id == "c-1" and store.number("77").status == "pending"
    assert {(c.caller, c.backlog) for c in store.callers()} == {("alice", 1)}


def test_a_batch_claims_new_numbers_and_follows_claimed_or_repeated_ones(stores):
    store, _ = stores
    store.submit(req(0, "15"), T0)
    numbers = [str(n) for n in range(100, 170)] + ["15", "100"]  # more than one transaction's worth
    stored = store.submit_many([req(i + 1, n, caller="bob") for i, n in enumerate(numbers)], T0)
    assert [r.id for r in stored] == [f"c-{i + 1}" for i in range(len(numbers))]
    assert [r.owner for r in stored] == [True] * 70 + [False, False]
    assert store.number("15").job_id == "c-0" and store.number("100").job_id == "c-1"
    assert store.request("c-71").owner is False and store.request("c-72").owner is False
    assert {(c.caller, c.backlog) for c in store.callers()} == {("alice", 1), ("bob", 70)}
    assert len(store.backlog("bob", 100)) == 70


def test_the_backlog_is_oldest_first_and_admission_moves_it_in_flight_once(stores):
    store, _ = stores
    for i, number in enumerate(["10", "11", "12"]):
        store.submit(req(i, number), T0)
    head = store.backlog("alice", 2)
    assert [i.number for i in head] == ["10", "11"]
    key = store.admit("alice", head, "body", T0 + 5)
    with pytest.raises(StaleWrite):
        store.admit("alice", head, "body", T0 + 6)
    assert [i.number for i in store.backlog("alice", 10)] == ["12"]
    # Out of the backlog is running; the admission time is recorded when it settles (from its message).
    assert [store.number(n).status for n in ("10", "11", "12")] == ["running", "running", "pending"]
    assert store.number("10").admitted_at is None
    assert {(c.caller, c.backlog, c.in_flight) for c in store.callers()} == {("alice", 1, 2)}
    assert store.outbox(T0 + 10) == [(key, "body")] and store.outbox(T0) == []
    store.forget_outbox([key])
    assert store.outbox(T0 + 10) == []


def cursor(lease: Lease | None) -> int | None:
    return None if lease is None else lease.cursor


def release(store, holder: str, at_cursor: int, now: float, final: bool = False) -> bool:
    return store.release_lease(holder, Lease(cursor=at_cursor), now, 30, final=final)


def test_one_dispatcher_holds_the_lease_until_it_releases_or_it_expires(stores):
    store, _ = stores
    assert cursor(store.take_lease("a", T0, 30)) == 0
    assert release(store, "a", 3, T0) is True
    assert cursor(store.take_lease("b", T0 + 2, 30)) == 3
    assert cursor(store.take_lease("c", T0 + 40, 30)) == 3  # b's lease ran out
    assert release(store, "b", 9, T0 + 40) is True  # too late: c holds it, and b has nothing to do
    assert store.take_lease("d", T0 + 41, 30) is None


def test_a_trigger_that_finds_the_lease_held_makes_the_holder_go_round_again(stores):
    store, _ = stores
    assert cursor(store.take_lease("a", T0, 30)) == 0
    assert store.take_lease("b", T0 + 1, 30) is None  # b's trigger is handed to a
    assert release(store, "a", 1, T0 + 2) is False  # a keeps the lease for another pass
    assert store.take_lease("c", T0 + 3, 30) is None
    assert release(store, "a", 2, T0 + 4) is False
    assert release(store, "a", 3, T0 + 5) is True  # nobody asked since: released
    assert cursor(store.take_lease("d", T0 + 6, 30)) == 3
    assert store.take_lease("e", T0 + 7, 30) is None
    assert release(store, "d", 4, T0 + 8, final=True) is True  # final lets go even when asked
    assert cursor(store.take_lease("f", T0 + 9, 30)) == 4


def test_many_triggers_during_a_pass_make_one_more_pass_and_only_the_first_writes_its_ask(moto_aws):
    client = boto3.client("dynamodb")
    store = DynamoComputeStore(client, STATE_TABLE.name)
    writes: list[str] = []
    client.meta.events.register("before-call.dynamodb.UpdateItem", lambda **_: writes.append("update"))
    assert cursor(store.take_lease("a", T0, 30)) == 0
    writes.clear()
    for i, holder in enumerate("bcde"):
        assert store.take_lease(holder, T0 + 1 + i / 10, 30) is None
    # b's failed take and its ask; c, d and e find the ask there already (the lease as the condition found it)
    assert len(writes) == 2 + 3
    assert release(store, "a", 1, T0 + 2) is False  # one more pass answers them all
    assert release(store, "a", 2, T0 + 3) is True
    writes.clear()
    assert cursor(store.take_lease("f", T0 + 4, 30)) == 2  # the ask was cleared: the next holder's triggers ask anew
    assert store.take_lease("g", T0 + 5, 30) is None and len(writes) == 3
    assert release(store, "f", 3, T0 + 6) is False


def test_the_lease_keeps_the_rate_limits_and_the_jobs_given_in_their_windows(stores):
    store, _ = stores
    store.set_limit("type:email", 600, T0)
    store.set_limit("caller:alice", 60.5, T0)
    store.set_limit("caller:bob", 5, T0)
    assert store.limits() == {"type:email": 600, "caller:alice": 60.5, "caller:bob": 5}
    lease = store.take_lease("a", T0, 30)
    assert lease.per_minute == {"type:email": 600, "caller:alice": 60.5, "caller:bob": 5} and lease.given == {}
    lease.given.update({"type:email": {T0: 10, T0 + 1: 4}, "caller:bob": {T0 - 1: 1}})
    lease.timer_at = T0 + 1
    store.set_limit("type:email", 300, T0 + 0.1)  # an admin's change while the lease is held is kept
    assert store.release_lease("a", lease, T0 + 0.2, 30) is True
    again = store.take_lease("b", T0 + 2, 30)
    assert again.per_minute == {"type:email": 300, "caller:alice": 60.5, "caller:bob": 5}
    assert again.given == {"type:email": {T0: 10, T0 + 1: 4}, "caller:bob": {T0 - 1: 1}} and again.timer_at == T0 + 1
    store.set_limit("caller:alice", None, T0 + 3)
    assert store.limits() == {"type:email": 300, "caller:bob": 5}


def test_a_holder_going_round_again_has_the_limits_and_the_pause_an_admin_changed_during_its_pass(stores):
    store, _ = stores
    store.set_limit("type:email", 600, T0)
    lease = store.take_lease("a", T0, 30)
    assert lease.paused is False
    store.set_limit("type:email", 1200, T0 + 0.1)  # raised while a's pass runs
    store.set_limit("caller:bob", 5, T0 + 0.1)
    store.set_paused(True, T0 + 0.1)
    assert store.take_lease("b", T0 + 0.2, 30) is None
    assert store.release_lease("a", lease, T0 + 0.3, 30) is False
    # The next pass keeps to the new limits: a holder that went round for seconds on its first read lagged them.
    assert lease.per_minute == {"type:email": 1200, "caller:bob": 5} and lease.paused is True
    assert store.release_lease("a", lease, T0 + 0.4, 30) is True
    assert store.paused() is True  # letting the lease go does not write over the admin's switch


def test_an_outcome_settles_the_number_and_the_caller_exactly_once(stores):
    store, ledger = stores
    store.submit(req(1, "77"), T0)
    (item,) = store.backlog("alice", 1)
    store.admit("alice", [item], "body", T0 + 1)
    assert len(ledger.record([outcome(item, admitted_at=T0 + 1)], T0 + 100)) == 1
    assert len(ledger.record([outcome(item, admitted_at=T0 + 50)], T0 + 101)) == 0  # a redelivery changes nothing
    record = store.number("77")
    assert (record.status, record.factors, record.computations, record.finished_at) == ("done", ["7", "11"], 1, T0 + 100)
    assert record.admitted_at == T0 + 1  # its message's admission, carried by the outcome
    assert (record.job_id, record.caller, record.submitted_at) == ("c-1", "alice", T0 + 1)  # the claim's, kept
    (alice,) = store.callers()
    assert (alice.backlog, alice.in_flight, alice.done, alice.failed) == (0, 0, 1, 0)
    # Submitted at T0 + 1, started a second before it finished: 98 s in the queue.
    assert [(s.finished_at, s.queue_wait_s) for s in store.settled("alice", 10)] == [(T0 + 100, pytest.approx(98.0))]


def test_a_failed_outcome_keeps_its_reason(stores):
    store, ledger = stores
    store.submit(req(1, "91"), T0)
    (item,) = store.backlog("alice", 1)
    store.admit("alice", [item], "body", T0 + 1)
    ledger.record([outcome(item, outcome="failed", factors=[], error="budget exceeded: not factored within 1 s")], T0 + 2)
    record = store.number("91")
    assert (record.status, record.error) == ("failed", "budget exceeded: not factored within 1 s")
    assert store.callers()[0].failed == 1


def test_several_outcomes_of_one_caller_settle_in_one_record_call(stores):
    store, ledger = stores
    for i, number in enumerate(["10", "11", "12"]):
        store.submit(req(i, number), T0)
    items = store.backlog("alice", 3)
    store.admit("alice", items, "body", T0 + 1)
    failed = outcome(items[2], outcome="failed", factors=[], error="budget exceeded")
    assert len(ledger.record([outcome(items[0]), outcome(items[1]), failed], T0 + 2)) == 3
    (alice,) = store.callers()
    assert (alice.in_flight, alice.done, alice.failed) == (0, 2, 1)
    assert len(store.settled("alice", 10)) == 3


def test_outcomes_of_several_callers_settle_in_one_record_call_and_each_moves_its_own_counters(stores):
    store, ledger = stores
    callers = ("alice", "bob", "carol")
    store.submit_many([req(i, str(300 + i), caller=callers[i % 3]) for i in range(9)], T0)
    items = {caller: store.backlog(caller, 3) for caller in callers}
    for caller, caller_items in items.items():
        store.admit(caller, caller_items, "body", T0 + 1)
    ledger.record([outcome(items["bob"][0], caller="bob")], T0 + 2)
    # Interleaved as a worker's batch of messages settles them, bob's first one again (a redelivery).
    outcomes = [outcome(item, caller=caller) for turn in range(3) for caller in callers
                for item in items[caller][turn : turn + 1]]
    assert len(ledger.record(outcomes, T0 + 3)) == 8
    assert {c.caller: (c.in_flight, c.done) for c in store.callers()} == {c: (0, 3) for c in callers}
    assert [len(store.settled(caller, 10)) for caller in callers] == [3, 3, 3]


def test_a_batch_of_several_callers_messages_settles_in_one_transaction(moto_aws):
    client = boto3.client("dynamodb")
    transactions = []
    client.meta.events.register("before-parameter-build.dynamodb.TransactWriteItems",
                                lambda params, **_: transactions.append(len(params["TransactItems"])))
    store = DynamoComputeStore(client, STATE_TABLE.name)
    ledger = dynamo_ledger(client, RESULTS_TABLE.name, STATE_TABLE.name, TYPED_JOBS_TABLE.name)
    callers = ("a", "b", "c")
    # Claims of several callers in one call: each transaction counts each caller's counter once.
    store.submit_many([req(i, str(1000 + i), caller=callers[i % 3]) for i in range(9)], T0)
    assert transactions == [3 * 9 + 3]
    items = {caller: store.backlog(caller, 3) for caller in callers}
    for caller, caller_items in items.items():
        store.admit(caller, caller_items, "body", T0 + 1)
    transactions.clear()
    # Nine results, nine number records, and each caller's counters and sample: one transaction, not three.
    assert len(ledger.record([outcome(item, caller=c) for c in callers for item in items[c]], T0 + 2)) == 9
    assert transactions == [9 + 9 + 3 * 2]
    assert {c.caller: (c.in_flight, c.done) for c in store.callers()} == {c: (0, 3) for c in callers}


def test_claims_of_several_callers_fill_transactions_within_dynamodbs_100_items():
    store = DynamoComputeStore(boto3.client("dynamodb", region_name="us-east-1"), STATE_TABLE.name)
    one_caller = list(store._claim_groups([req(i, str(i)) for i in range(100)]))
    assert [len(group) for group in one_caller] == [33, 33, 33, 1]  # 3 x 33 + the counter: 100
    five = list(store._claim_groups([req(i, str(i), caller="abcde"[i % 5]) for i in range(50)]))
    assert [len(group) for group in five] == [31, 19]  # 3 x 31 + 5 counters: 98; a 32nd would make 101
    assert sum(five, []) == [req(i, str(i), caller="abcde"[i % 5]) for i in range(50)]


def test_the_settled_sample_is_the_callers_latest_jobs_newest_first(stores):
    store, ledger = stores
    store.submit_many([req(i, str(100 + i)) for i in range(5)], T0)
    items = store.backlog("alice", 5)
    store.admit("alice", items, "body", T0 + 1)
    for i, item in enumerate(items):  # one message each, finishing a second apart
        ledger.record([outcome(item, finished=T0 + 100 + i)], T0 + 100 + i)
    assert [s.finished_at for s in store.settled("alice", 3)] == [T0 + 104, T0 + 103, T0 + 102]
    assert store.settled("bob", 3) == []


def test_the_sample_holds_each_new_outcome_once_newest_first_across_settlements(stores):
    store, ledger = stores
    store.submit_many([req(i, str(200 + i)) for i in range(4)], T0)
    items = store.backlog("alice", 4)
    store.admit("alice", items, "body", T0 + 1)
    ledger.record([outcome(items[0], finished=T0 + 100), outcome(items[3], finished=T0 + 103)], T0 + 103)
    # A redelivered job beside two new ones: the ledger drops it, and only the new two join the sample.
    assert len(ledger.record([outcome(items[0], finished=T0 + 110), outcome(items[1], finished=T0 + 101),
                              outcome(items[2], finished=T0 + 102)], T0 + 110)) == 2
    # Each settlement's jobs finished on both sides of the other's: the newest first, whichever carried them.
    assert [s.finished_at for s in store.settled("alice", 10)] == [T0 + 103, T0 + 102, T0 + 101, T0 + 100]
    assert [s.finished_at for s in store.settled("alice", 3)] == [T0 + 103, T0 + 102, T0 + 101]
    assert [s.queue_wait_s for s in store.settled("alice", 1)] == [pytest.approx(103 - 1 - 3)]


def test_a_callers_weight_is_one_until_set_and_then_shows_beside_its_counts(stores):
    store, _ = stores
    store.submit(req(0, "10"), T0)
    assert [(c.caller, c.backlog, c.weight) for c in store.callers()] == [("alice", 1, 1.0)]
    store.set_weight("alice", 2.5, T0 + 1)
    store.set_weight("bob", 0.5, T0 + 1)  # a caller may be weighed before it submits anything
    assert sorted((c.caller, c.backlog, c.weight) for c in store.callers()) == [("alice", 1, 2.5), ("bob", 0, 0.5)]


def test_several_messages_are_admitted_together_and_one_admitted_already_is_left_out(stores):
    store, _ = stores
    store.submit_many([req(i, str(100 + i)) for i in range(60)], T0)
    backlog = store.backlog("alice", 60)
    store.admit("alice", backlog[10:20], "taken", T0 + 1)  # another dispatcher took the second message's items
    messages = [("alice", backlog[i : i + 10], f"body {i // 10}") for i in range(0, 60, 10)]  # several transactions
    keys = store.admit_many(messages, T0 + 2)
    assert [key is not None for key in keys] == [True, False, True, True, True, True]
    assert store.backlog("alice", 60) == []
    assert {(c.caller, c.backlog, c.in_flight) for c in store.callers()} == {("alice", 0, 60)}
    assert sorted(body for _, body in store.outbox(T0 + 10)) == ["body 0", "body 2", "body 3", "body 4", "body 5",
                                                                   "taken"]


def test_messages_of_several_callers_are_admitted_in_one_transaction_each_callers_counts_moving_once(stores):
    store, _ = stores
    store.submit_many([req(i, str(100 + i), caller=("alice", "bob", "carol")[i % 3]) for i in range(30)], T0)
    messages = [(caller, store.backlog(caller, 10)[offset : offset + 5], f"{caller} {offset}")
                for offset in (0, 5) for caller in ("alice", "bob", "carol")]
    keys = store.admit_many(messages, T0 + 2)
    assert all(keys) and len(set(keys)) == 6
    assert sorted((c.caller, c.backlog, c.in_flight) for c in store.callers()) == [
        ("alice", 0, 10), ("bob", 0, 10), ("carol", 0, 10)]
    assert len(store.outbox(T0 + 10)) == 6


def test_a_pass_admitting_for_several_callers_writes_one_transaction_on_dynamodb(moto_aws):
    client = boto3.client("dynamodb")
    store = DynamoComputeStore(client, STATE_TABLE.name)
    store.submit_many([req(i, str(100 + i), caller=("alice", "bob", "carol")[i % 3]) for i in range(30)], T0)
    transactions: list[int] = []
    client.meta.events.register("before-parameter-build.dynamodb.TransactWriteItems",
                                lambda params, **_: transactions.append(len(params["TransactItems"])))
    store.admit_many([(caller, store.backlog(caller, 10), caller) for caller in ("alice", "bob", "carol")], T0 + 2)
    assert transactions == [3 * 10 + 3 + 3]  # each item's backlog delete, an outbox put each, a counts update each
