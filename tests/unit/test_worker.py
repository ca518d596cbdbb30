"""The job worker: exactly-once outcomes, retries with backoff, poison messages."""
from dataclasses import dataclass

import pytest

from chalicelib.core.jobs import JobEnvelope, JobSpec
from chalicelib.dlq.memory import MemoryFailureLog
from chalicelib.runs import service as runs
from chalicelib.runs.models import StartRun
from chalicelib.worker.retry import InjectedFailure, RetryPolicy, with_injected_failures
from chalicelib.worker.runner import NumberRunner
from chalicelib.worker.worker import JobWorker, Record
from tests.fakes import MemoryContainer

T0 = 1_800_000_000.0


@pytest.fixture
def c():
    c = MemoryContainer()
    c.run = runs.start_run(StartRun(x=600, y=1), c.pacer, T0)
    return c


def envelope(run_id, *numbers, attempt=1) -> Record:
    jobs = [JobSpec(id=f"{run_id}:{i}", number=str(n), attempt=attempt) for i, n in enumerate(numbers)]
    return Record(message_id=f"m-{numbers}", body=JobEnvelope(group=run_id, jobs=jobs).model_dump_json())


def worker(c, compute=None, max_attempts=3) -> JobWorker:
    from chalicelib.compute.factoring import prime_factors
    numbers = NumberRunner(compute or prime_factors)
    return JobWorker(ledger=c.ledger, retries=c.jobs_queue, policy=RetryPolicy(max_attempts=max_attempts),
                     runners={"run": numbers, "compute": numbers}, worker_id="w1")


def test_a_message_records_one_result_per_job_with_its_factors(c):
    assert worker(c).process([envelope(c.run.run_id, 12, 97)], lambda: T0).failed_ids == []
    assert c.ledger.outcomes[f"{c.run.run_id}:0"].factors == ["2", "2", "3"]
    assert c.runs.current().processed == 2


def test_a_redelivered_message_changes_nothing(c):
    message = envelope(c.run.run_id, 12, 97)
    worker(c).process([message], lambda: T0)
    worker(c).process([message, message], lambda: T0)
    assert c.runs.current().processed == 2 == len(c.ledger.outcomes)


def counting_ledger(c, fail=False):
    """The container's ledger, with each call's job ids kept (and every call failing, if `fail`)."""
    calls, record = [], c.ledger.record

    def counted(outcomes, now):
        calls.append([o.job_id for o in outcomes])
        if fail:
            raise RuntimeError("the table is away")
        return record(outcomes, now)
    c.ledger.record = counted
    return calls


def jobs_of(run_id, first, *numbers) -> Record:
    """A message of the run whose jobs are numbered from `first` (envelope's start at 0 in every message)."""
    jobs = [JobSpec(id=f"{run_id}:{first + i}", number=str(n)) for i, n in enumerate(numbers)]
    return Record(message_id=f"m-{first}", body=JobEnvelope(group=run_id, jobs=jobs).model_dump_json())


def test_quick_messages_of_a_batch_settle_together_and_each_is_told_in_turn(c):
    calls, told = counting_ledger(c), []
    w = worker(c)
    w.settled = lambda e: told.append([j.number for j in e.jobs])
    run = c.run.run_id
    result = w.process([jobs_of(run, 0, 12, 97), jobs_of(run, 2, 8), jobs_of(run, 3, 9, 10)], lambda: T0)
    assert (result.failed_ids, result.jobs_done) == ([], 5)
    assert len(calls) == 1 and len(calls[0]) == 5  # one record, so one transaction: the same run, quick messages
    assert told == [["12", "97"], ["8"], ["9", "10"]] and c.runs.current().processed == 5


def test_a_slow_message_settles_at_once_rather_than_wait_for_the_next(c):
    calls, clock = counting_ledger(c), [T0]

    def slow(n):
        clock[0] += 0.2  # each job takes longer than settle_within_s
        return [n]
    run = c.run.run_id
    assert worker(c, slow).process([jobs_of(run, 0, 12), jobs_of(run, 1, 8)], lambda: clock[0]).jobs_done == 2
    assert calls == [[f"{run}:0"], [f"{run}:1"]]


def test_a_message_and_its_duplicate_settled_together_record_each_job_once_and_both_succeed(c):
    calls = counting_ledger(c)
    message = envelope(c.run.run_id, 12, 97)
    result = worker(c).process([message, message], lambda: T0)
    assert result.failed_ids == [] and calls == [[f"{c.run.run_id}:0", f"{c.run.run_id}:1"]]
    assert c.runs.current().processed == 2


def test_outcomes_that_cannot_be_stored_fail_every_message_settled_with_them(c):
    counting_ledger(c, fail=True)
    told = []
    w = worker(c)
    w.settled = lambda e: told.append(e)
    first, second = jobs_of(c.run.run_id, 0, 12), jobs_of(c.run.run_id, 1, 8)
    result = w.process([first, second], lambda: T0)
    assert sorted(result.failed_ids) == sorted([first.message_id, second.message_id]) and told == []


def test_a_job_that_raises_is_retried_alone_with_a_later_attempt(c):
    def flaky(n):
        if n == 97:
            raise RuntimeError("boom")
        return [n]

    assert worker(c, flaky).process([envelope(c.run.run_id, 12, 97)], lambda: T0).failed_ids == []
    retry = JobEnvelope.model_validate_json(c.jobs_queue.sent[-1].body)
    assert [(j.number, j.attempt) for j in retry.jobs] == [("97", 2)]
    assert c.runs.current().processed == 1


def test_a_job_that_fails_its_last_attempt_is_counted_failed_once(c):
    def broken(n):
        raise RuntimeError("always")

    message = envelope(c.run.run_id, 97, attempt=3)
    worker(c, broken).process([message, message], lambda: T0)
    run = c.runs.current()
    assert (run.failed, run.processed, run.settled) == (1, 0, 1)
    assert c.ledger.outcomes[f"{c.run.run_id}:0"].error == "RuntimeError: always"


def test_an_unparseable_message_is_reported_failed_and_the_rest_of_the_batch_proceeds(c):
    result = worker(c).process([Record("poison", "not json"), envelope(c.run.run_id, 12)], lambda: T0)
    assert (result.failed_ids, result.jobs_done) == (["poison"], 1)
    assert c.runs.current().processed == 1


@dataclass(frozen=True)
class FixedJitterPolicy(RetryPolicy):
    """The shared policy with its jitter roll fixed, so a test can name the exact delay it must produce."""
    roll: float = 1.0

    def delay_before(self, attempt, rng=None):
        return super().delay_before(attempt, rng=lambda: self.roll)


@pytest.mark.parametrize("max_delay_s, roll, delay", [(60, 1.0, 8), (60, 0.5, 4), (3, 1.0, 3)])
def test_a_failed_message_has_its_reason_logged_and_is_held_back_with_backoff(c, max_delay_s, roll, delay):
    counting_ledger(c, fail=True)
    failures = MemoryFailureLog()
    w = worker(c)
    w.failures = failures
    w.policy = FixedJitterPolicy(base_delay_s=1, max_delay_s=max_delay_s, roll=roll)
    message = envelope(c.run.run_id, 12)
    w.process([Record(message.message_id, message.body, receipt_handle="h1", receive_count=4)], lambda: T0)
    assert "the table is away" in failures.reasons([message.message_id])[message.message_id]
    # Received 4 times, so the next is attempt 5: ceiling min(cap, 1 s * 2^(5-2) = 8 s), times the jitter roll.
    assert c.jobs_queue.delayed == {"h1": delay}


def test_an_unparseable_message_comes_back_at_once_since_no_wait_would_make_it_parse(c):
    failures = MemoryFailureLog()
    w = worker(c)
    w.failures = failures
    w.policy = FixedJitterPolicy(base_delay_s=1, max_delay_s=60, roll=1.0)
    w.process([Record("poison", "not json", receipt_handle="h1", receive_count=2)], lambda: T0)
    assert "unparseable message" in failures.reasons(["poison"])["poison"]
    assert c.jobs_queue.delayed == {"h1": 0}


def test_injected_failures_strike_at_the_configured_rate_only():
    rolls = iter([0.1, 0.5, 0.19, 0.9])
    faulty = with_injected_failures(lambda n: [n], 0.2, rng=lambda: next(rolls))
    outcomes = []
    for _ in range(4):
        try:
            outcomes.append(faulty(7))
        except InjectedFailure:
            outcomes.append("failed")
    assert outcomes == ["failed", [7], "failed", [7]]
    assert with_injected_failures(abs, 0.0) is abs


def test_backoff_grows_exponentially_up_to_its_cap():
    policy = RetryPolicy(base_delay_s=1, max_delay_s=8)
    assert [policy.delay_before(attempt, rng=lambda: 1.0) for attempt in (2, 3, 4, 5, 6)] == [1, 2, 4, 8, 8]
    assert policy.delay_before(4, rng=lambda: 0.0) == 0  # full jitter reaches down to zero


def test_the_sqs_adapter_sends_a_group_id_as_message_group_id_and_omits_it_otherwise():
    import boto3
    from botocore.stub import Stubber

    from chalicelib.aws.sqs import SqsQueue
    from chalicelib.core.jobs import OutboundMessage

    sqs = boto3.client("sqs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    queue = SqsQueue(sqs, "q")
    queue._url = "https://sqs.example/q"  # known already: the stub answers only the send
    with Stubber(sqs) as stub:
        stub.add_response("send_message_batch", {"Successful": [], "Failed": []}, {
            "QueueUrl": "https://sqs.example/q",
            "Entries": [{"Id": "0", "MessageBody": "a", "DelaySeconds": 0, "MessageGroupId": "alice"},
                        {"Id": "1", "MessageBody": "b", "DelaySeconds": 0}]})
        queue.send([OutboundMessage(body="a", group_id="alice"), OutboundMessage(body="b")])
        stub.assert_no_pending_responses()


def test_a_batch_is_worked_round_robin_across_runs_and_each_message_is_reported_as_it_settles(c):
    def compute_envelope(run_id, n) -> Record:
        body = JobEnvelope(origin="compute", group=run_id, jobs=[JobSpec(id=f"{run_id}-{n}", number=str(n))])
        return Record(message_id=f"m-{run_id}-{n}", body=body.model_dump_json())

    batch = [compute_envelope("big", n) for n in (10, 11, 12)] + [compute_envelope("small", 13)]
    settled = []
    working = worker(c)
    working.settled = lambda e: settled.append((e.group, e.jobs[0].number))
    working.process(batch, lambda: T0)
    # Batch order would serve the small caller's one message last, behind all of the big caller's.
    assert settled == [("big", "10"), ("small", "13"), ("big", "11"), ("big", "12")]


def test_a_message_sent_ahead_of_its_second_is_worked_after_the_others_and_held_until_that_second(c):
    def compute_envelope(n, not_before=None) -> Record:
        body = JobEnvelope(origin="compute", group="alice", jobs=[JobSpec(id=f"alice-{n}", number=str(n))],
                           not_before=not_before)
        return Record(message_id=f"m-{n}", body=body.model_dump_json())

    clock = [T0 + 0.6]
    events = []
    working = worker(c)
    working.sleep = lambda s: (events.append(f"hold {s:.1f}"), clock.__setitem__(0, clock[0] + s))
    working.settled = lambda e: events.append(f"{e.jobs[0].number} at {clock[0] - T0:.1f}")
    batch = [compute_envelope(10, not_before=T0 + 1), compute_envelope(11, not_before=T0 - 5), compute_envelope(12)]
    assert working.process(batch, lambda: clock[0]).jobs_done == 3
    # A not_before already past holds nothing; a later one waits for its second, after the rest of the batch.
    assert events == ["12 at 0.6", "11 at 0.6", "hold 0.4", "10 at 1.0"]
    assert c.ledger.outcomes["alice-10"].started_at == T0 + 1


def test_the_worker_tells_each_settled_message_and_then_the_end_of_its_batch_even_when_a_message_fails(c):
    told: list[str] = []
    w = worker(c)
    w.settled = lambda e: told.append(f"settled {len(e.jobs)}")
    w.batch_done = lambda: told.append("batch done")
    poison = Record(message_id="bad", body="not json")
    w.process([envelope(c.run.run_id, 12, 97), poison, envelope(c.run.run_id, 8)], lambda: T0)
    assert told == ["settled 2", "settled 1", "batch done"]


def test_each_item_of_a_settlement_transaction_belongs_to_its_own_outcome_in_any_order():
    # A cancellation reason names an item; the ledger drops the outcome that owns it. Outcomes of several callers
    # handed in interleaved must still own their own result item and their own number record.
    import boto3

    from chalicelib.compute.dynamo import ComputeSettlement
    from chalicelib.core.jobs import JobOutcome
    from chalicelib.worker.dynamo import DynamoResultLedger

    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    settlement = ComputeSettlement("state")
    ledger = DynamoResultLedger(client, "results", {"compute": settlement})
    outcomes = [JobOutcome(job_id=f"{caller}-{i}", group=caller, origin="compute", number=f"{n}", outcome="done",
                           factors=[f"{n}"], attempt=1, worker="w", finished_at=1.0)
                for i, (caller, n) in enumerate([("a", 11), ("b", 13), ("a", 17), ("c", 19), ("b", 23)])]
    items, owners = ledger._transaction(settlement, outcomes, 2.0)
    assert len(items) == len(owners) == 5 * 2 + 3 * 2
    for item, owner in zip(items, owners):
        if owner is None:
            continue
        put = item["Put"]  # the result item, or the number's record: each names its outcome's job
        assert put["Item"]["job_id"] == {"S": outcomes[owner].job_id}
        if put["TableName"] == "state":
            assert put["Item"]["pk"] == {"S": f"CNUM#{outcomes[owner].number}"}
    assert sorted(o for o in owners if o is not None) == sorted(list(range(5)) * 2)


def test_a_settlement_transaction_holds_as_many_groups_as_fit_in_100_items():
    from chalicelib.compute.dynamo import ComputeSettlement
    from chalicelib.core.jobs import JobOutcome
    from chalicelib.typed.dynamo import TypedJobSettlement
    from chalicelib.worker.dynamo import _chunks

    def outcomes(origin, callers, each):
        return [JobOutcome(job_id=f"{c}-{i}", group=c, origin=origin, outcome="done", attempt=1, worker="w",
                           finished_at=1.0) for c in callers for i in range(each)]

    def items(settlement, chunk):  # what the ledger's transaction holds for a chunk
        groups = {o.group for o in chunk}
        return (len(chunk) * (1 + settlement.items_per_outcome) + len(groups) * settlement.shared_items
                + settlement.common_items)

    compute, typed = ComputeSettlement("state"), TypedJobSettlement("state", "typed")
    four = list(_chunks(compute, outcomes("compute", "abcd", 10)))
    assert [items(compute, chunk) for chunk in four] == [88]  # 40 results, 40 records, 4 x 2 shared
    five = list(_chunks(compute, outcomes("compute", "abcde", 10)))
    assert [items(compute, chunk) for chunk in five] == [100, 12]  # e's ten split five and five
    assert [o.job_id for chunk in five for o in chunk] == [o.job_id for o in outcomes("compute", "abcde", 10)]
    one_big = list(_chunks(typed, outcomes("typed", "a", 60)))
    assert [len(chunk) for chunk in one_big] == [48, 12]  # 48 x 2 + 2 shared + 2 common = 100
