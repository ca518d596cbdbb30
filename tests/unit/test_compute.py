"""Fair compute through the HTTP adapter and the services, over the in-memory twins."""
import json
import time
from datetime import datetime

import pytest

from chalicelib.admission.dispatcher import Dispatcher, fair_shares
from chalicelib.compute import service as compute
from chalicelib.compute.factoring import BudgetExceeded, prime_factors_within
from chalicelib.compute.models import ComputeRequest
from chalicelib.compute.service import compute_job_spec
from chalicelib.container import reset_container
from chalicelib.core.jobs import JobEnvelope
from chalicelib.worker.retry import RetryPolicy
from chalicelib.worker.runner import NumberRunner
from chalicelib.worker.worker import JobWorker, Record
from tests.fakes import MemoryContainer


@pytest.fixture
def c():
    return MemoryContainer(compute_max_in_flight=20, compute_jobs_per_message=5)


def post(client, path, body, caller="alice", raw=None):
    headers = {"Content-Type": "application/json"}
    if caller is not None:
        headers["X-Caller-ID"] = caller
    response = client.http.post(path, headers=headers, body=raw if raw is not None else json.dumps(body))
    return response.status_code, response.json_body


def get(client, path):
    response = client.http.get(path)
    return response.status_code, response.json_body


def run_worker(c, compute_fn=None, limit=100):
    """Deliver what the dispatcher sent to a worker, as the runtime would, and dispatch again after each batch."""
    numbers = NumberRunner(compute_fn or (lambda n: prime_factors_within(n, 5)))
    worker = JobWorker(ledger=c.ledger, retries=c.jobs_queue, policy=RetryPolicy(), worker_id="w1",
                       runners={"run": numbers, "compute": numbers})
    delivered = 0
    while c.jobs_queue.sent and delivered < limit:
        message = c.jobs_queue.sent.pop(0)
        worker.process([Record(f"m{delivered}", message.body)], time.time)
        c.compute_dispatcher.dispatch(time.time())
        delivered += 1
    return delivered


def test_post_compute_answers_202_with_an_id_and_get_returns_the_factors_once_a_worker_ran(client, c):
    code, body = post(client, "/api/compute", {"number": "360"})
    assert code == 202 and body["status"] in ("pending", "running") and body["id"]
    run_worker(c)
    code, view = get(client, f"/api/compute/{body['id']}")
    assert code == 200
    assert (view["status"], view["factors"], view["cached"], view["caller"]) == ("done", ["2", "2", "2", "3", "3", "5"], False, "alice")
    assert view["wait_s"] is not None and view["finished_at"] >= view["submitted_at"]


def moment(text):
    """An API time back as epoch seconds: ISO 8601 with a `Z`, as every time the API gives."""
    assert isinstance(text, str) and text.endswith("Z"), text
    return datetime.fromisoformat(text).timestamp()


def test_a_compute_views_times_are_iso_strings_of_the_stored_moments_and_its_wait_is_seconds(client, c):
    _, body = post(client, "/api/compute", {"number": "360"})
    pending = get(client, f"/api/compute/{body['id']}")[1]
    request = c.compute.requests[body["id"]]
    assert abs(moment(pending["submitted_at"]) - request.submitted_at) < 0.001  # to the millisecond
    # Admitted at once, so running; its admission time is recorded when it settles, from its message.
    assert pending["status"] == "running" and pending["admitted_at"] is None
    assert pending["finished_at"] is None and pending["wait_s"] is None
    run_worker(c)
    done, record = get(client, f"/api/compute/{body['id']}")[1], c.compute.numbers["360"]
    assert request.submitted_at <= record.admitted_at <= record.finished_at
    assert abs(moment(done["admitted_at"]) - record.admitted_at) < 0.001
    assert abs(moment(done["finished_at"]) - record.finished_at) < 0.001
    assert done["wait_s"] == round(record.finished_at - request.submitted_at, 6)
    _, again = post(client, "/api/compute", {"number": "360"}, caller="bob")
    cached = get(client, f"/api/compute/{again['id']}")[1]
    assert cached["admitted_at"] is None and moment(cached["finished_at"]) >= moment(cached["submitted_at"])


def test_a_big_number_is_factored_exactly_as_strings(client, c):
    number = str((2**61 - 1) * (2**31 - 1) ** 2)
    _, body = post(client, "/api/compute", {"number": number})
    run_worker(c)
    assert get(client, f"/api/compute/{body['id']}")[1]["factors"] == ["2147483647", "2147483647", str(2**61 - 1)]


@pytest.mark.parametrize(
    "body, caller, problem",
    [
        ({"number": "12"}, None, "X-Caller-ID"),
        ({"number": "12a"}, "alice", "digits"),
        ({"number": "-12"}, "alice", "sign"),
        ({"number": "+12"}, "alice", "sign"),
        ({"number": ""}, "alice", "empty"),
        ({"number": "9" * 201}, "alice", "limit is 200"),
        ({"number": "1"}, "alice", "at least 2"),
        ({"number": "0"}, "alice", "at least 2"),
        ({"number": 12}, "alice", "valid string"),
        ({}, "alice", "number"),
        ({"number": "12", "extra": 1}, "alice", "extra"),
    ],
)
def test_a_bad_compute_request_gets_400_naming_the_problem_and_stores_nothing(client, c, body, caller, problem):
    code, answer = post(client, "/api/compute", body, caller=caller)
    assert code == 400, answer
    assert answer["error"] == "validation_error" and problem in answer["message"]
    assert c.compute.requests == {} and c.compute.numbers == {} and c.jobs_queue.sent == []


def test_a_batch_with_one_bad_number_is_rejected_whole_naming_its_index(client, c):
    code, answer = post(client, "/api/compute/batch", {"numbers": ["12", "15", "x"]})
    assert code == 400 and "numbers.2" in answer["message"]
    assert c.compute.requests == {}


def test_a_batch_over_100_numbers_is_rejected(client, c):
    code, answer = post(client, "/api/compute/batch", {"numbers": ["12"] * 101})
    assert code == 400 and "numbers" in answer["message"]
    assert c.compute.requests == {}


def test_the_batch_endpoint_accepts_up_to_100_numbers_and_answers_an_id_each(client, c):
    code, body = post(client, "/api/compute/batch", {"numbers": [str(n) for n in range(2, 102)]})
    assert code == 202 and len(body["jobs"]) == 100 and len({j["id"] for j in body["jobs"]}) == 100


def largest_batch(count=100, digits=200):
    """Distinct numbers of the most digits allowed: the biggest body a valid batch needs."""
    return {"numbers": [str(10 ** (digits - 1) + n) for n in range(count)]}


def test_the_largest_valid_batch_fits_the_body_limit(client, c):
    body = largest_batch()
    assert len(json.dumps(body)) > 20_000  # 100 numbers of 200 digits
    code, answer = post(client, "/api/compute/batch", body)
    assert code == 202, answer
    assert len(answer["jobs"]) == 100 and len(c.compute.requests) == 100


def test_a_body_over_the_limit_gets_413_and_stores_nothing(client, c):
    padded = json.dumps({**largest_batch(), "pad": " " * c.settings.max_body_bytes})
    code, answer = post(client, "/api/compute/batch", None, raw=padded)
    assert code == 413 and f"the limit is {c.settings.max_body_bytes}" in answer["message"]
    assert c.compute.requests == {} and c.compute.numbers == {} and c.jobs_queue.sent == []


def test_an_unknown_compute_id_is_404(client):
    assert get(client, "/api/compute/c-nope")[0] == 404


def test_a_number_already_done_is_answered_from_the_stored_result_for_any_caller_without_computing_again(client, c):
    calls = []

    def counting(n):
        calls.append(n)
        return prime_factors_within(n, 5)

    _, first = post(client, "/api/compute", {"number": "1001"}, caller="alice")
    run_worker(c, counting)
    code, second = post(client, "/api/compute", {"number": "1001"}, caller="bob")
    assert code == 202 and second["status"] == "done"
    run_worker(c, counting)
    view = get(client, f"/api/compute/{second['id']}")[1]
    assert (view["cached"], view["factors"], view["caller"]) == (True, ["7", "11", "13"], "bob")
    assert calls == [1001] and c.compute.numbers["1001"].computations == 1


def test_requests_for_a_pending_number_are_queued_once_and_all_see_its_result(client, c):
    ids = [post(client, "/api/compute", {"number": "77"}, caller=f"caller{i}")[1]["id"] for i in range(5)]
    assert sum(len(JobEnvelope.model_validate_json(m.body).jobs) for m in c.jobs_queue.sent) == 1
    run_worker(c)
    views = [get(client, f"/api/compute/{i}")[1] for i in ids]
    assert [v["status"] for v in views] == ["done"] * 5
    assert [v["cached"] for v in views] == [False, True, True, True, True]


def test_leading_zeros_name_the_same_number():
    assert compute.check_number("000123", "number", 200) == "123"


def test_the_dispatcher_keeps_the_in_flight_window_bounded(client, c):
    post(client, "/api/compute/batch", {"numbers": [str(n) for n in range(1000, 1100)]})
    admitted = sum(len(JobEnvelope.model_validate_json(m.body).jobs) for m in c.jobs_queue.sent)
    assert admitted == 20
    assert {(x.caller, x.backlog, x.in_flight) for x in c.compute.callers()} == {("alice", 80, 20)}


def test_a_small_caller_is_admitted_round_robin_ahead_of_a_big_backlog(client, c):
    for offset in range(0, 500, 100):
        post(client, "/api/compute/batch", {"numbers": [str(n) for n in range(10_000 + offset, 10_100 + offset)]}, caller="big")
    _, small = post(client, "/api/compute/batch", {"numbers": [str(n) for n in range(50_000, 50_010)]}, caller="small")
    while any(get(client, f"/api/compute/{j['id']}")[1]["status"] != "done" for j in small["jobs"]):
        assert run_worker(c, limit=1) == 1
    big = next(x for x in c.compute.callers() if x.caller == "big")
    # FIFO would finish all 500 of big's first. Round robin: the 20 already in flight, then about one for one.
    assert big.done <= 20 + 10 + 5


def test_a_dispatch_sends_the_caller_holding_fewest_slots_first_and_interleaves_callers(c):
    c.compute.submit_many([ComputeRequest(id=f"b{n}", caller="big", number=str(n), owner=True, submitted_at=1)
                           for n in range(20_000, 20_040)], 1)
    c.compute.submit_many([ComputeRequest(id=f"s{n}", caller="small", number=str(n), owner=True, submitted_at=2)
                           for n in range(60_000, 60_010)], 2)
    c.compute.admit("big", c.compute.backlog("big", 5), "{}", 3)  # big already holds one message's slots
    c.compute_dispatcher.dispatch(4)
    senders = [JobEnvelope.model_validate_json(m.body).group for m in c.jobs_queue.sent]
    # 15 free slots: small's 10 (it held none) and 5 of big's, small's first and the two alternating.
    assert senders == ["small", "big", "small"]


def test_fair_shares_split_evenly_and_rotate_the_remainder():
    assert fair_shares({"a": 100, "b": 100, "c": 1}, 10, 0) == {"a": 5, "b": 4, "c": 1}
    assert fair_shares({"a": 100, "b": 100}, 3, 1) == {"b": 2, "a": 1}
    assert fair_shares({"a": 0}, 3, 0) == {}


def test_fair_shares_go_a_whole_message_at_a_time_so_freed_slots_are_not_split_into_small_messages():
    assert fair_shares({"a": 100, "b": 100}, 10, 0, {"a": 45, "b": 45}, quantum=10) == {"a": 10}
    assert fair_shares({"a": 100, "b": 3}, 20, 0, {"a": 0, "b": 0}, quantum=10) == {"a": 17, "b": 3}


def test_fair_shares_give_freed_slots_to_the_least_served_and_among_equals_to_those_with_fewer_in_flight():
    # A holds the whole window; B and C arrive, level with A's service: the next messages are theirs.
    assert fair_shares({"a": 9000, "b": 1000, "c": 10}, 20, 0, {"a": 100}, quantum=10,
                       starts={"a": 7.0, "b": 7.0, "c": 7.0}) == {"b": 10, "c": 10}
    # Service decides before what is in flight: B was admitted less per unit of weight, so it catches up first.
    assert fair_shares({"a": 100, "b": 100}, 30, 0, {"a": 0, "b": 50}, quantum=10,
                       starts={"a": 30.0, "b": 0.0}) == {"b": 30}
    # Once even, it is round robin again.
    assert fair_shares({"a": 100, "b": 100}, 4, 0, {"a": 5, "b": 5}) == {"a": 2, "b": 2}


def test_service_across_passes_admits_backlogged_callers_by_weight_and_starts_a_returning_caller_level():
    from chalicelib.admission.models import Service

    service, weights = Service(), {"heavy": 2.0, "light": 1.0}
    admitted = {"heavy": 0, "light": 0}
    for cursor in range(60):  # 60 passes, 10 slots free in each (a message's worth), both always backlogged
        backlogs = {"heavy": 10_000, "light": 10_000}
        shares = fair_shares(backlogs, 10, cursor, {}, 10, weights, {c: service.start(c) for c in backlogs})
        service.record(shares, weights, wanting=set(backlogs), active=set(backlogs))
        for caller, share in shares.items():
            admitted[caller] += share
    assert admitted == {"heavy": 400, "light": 200}
    # Light goes idle while heavy runs on: it is forgotten, and comes back level with heavy, with no credit saved.
    for _ in range(10):
        service.record({"heavy": 10}, weights, wanting={"heavy"}, active={"heavy"})
    assert "light" not in service.of and service.start("light") == service.start("heavy")


def test_callers_shows_backlog_in_flight_done_and_wait_percentiles(client, c):
    post(client, "/api/compute/batch", {"numbers": [str(n) for n in range(100, 130)]}, caller="alice")
    run_worker(c)
    code, body = get(client, "/api/callers")
    assert code == 200
    (alice,) = body["callers"]
    assert (alice["caller"], alice["backlog"], alice["in_flight"], alice["done"]) == ("alice", 0, 0, 30)
    assert 0 <= alice["p50_wait_s"] <= alice["p95_wait_s"] < 5


def test_a_number_over_its_budget_fails_once_with_budget_exceeded_and_no_retry(client, c):
    def hopeless(n):
        raise BudgetExceeded(0.5)

    _, body = post(client, "/api/compute", {"number": "91"})
    run_worker(c, hopeless)
    view = get(client, f"/api/compute/{body['id']}")[1]
    assert view["status"] == "failed" and view["error"].startswith("budget exceeded")
    assert c.jobs_queue.sent == []


def test_factoring_a_hard_number_stops_at_its_budget():
    from sympy import nextprime
    with pytest.raises(BudgetExceeded):
        prime_factors_within(nextprime(10**40) * nextprime(10**45), 0.5)


def test_flint_factors_agree_with_sympy_in_process_and_in_the_budgeted_child():
    import math
    import random

    from sympy import factorint, isprime, nextprime
    rng = random.Random(11)
    small = [2, 3, 4, 97, 2**64 + 1, 10**18 + 9, 2**100, 3**70, 1234567891011121314151617181920]
    small += [rng.randrange(2, 10**18) for _ in range(20)]
    for number in small:  # sympy factors these quickly: the same factors, as sympy finds them
        expected = sorted(int(p) for p, power in factorint(number).items() for _ in range(power))
        assert prime_factors_within(number, 10) == expected, number
    # Past 100 bits, in a forked child. sympy's own factoring of 30-digit numbers took seconds each; a
    # factorisation is right if it is sorted, its factors are primes (sympy's test) and their product is the number.
    large = [rng.randrange(10**29, 10**30) for _ in range(20)]
    large += [nextprime(rng.randrange(10**14, 10**15)) * nextprime(rng.randrange(10**14, 10**15)) for _ in range(3)]
    for number in large:
        factors = prime_factors_within(number, 10)
        assert factors == sorted(factors) and all(isprime(f) for f in factors) and math.prod(factors) == number, number


def test_seed_two_example_of_42_digits_is_factored_within_the_budget():
    # FLINT takes about 0.04 s (bench/factoring.py measures it); past the budget this would raise BudgetExceeded.
    factors = prime_factors_within(100000000000000000050700000000000000004563, 10)
    assert factors == [100000000000000000039, 1000000000000000000117]


def test_a_dispatch_triggered_while_another_holds_the_lease_is_not_lost():
    from chalicelib.aws.memory import MemoryQueue
    from chalicelib.compute.memory import MemoryComputeStore
    from chalicelib.compute.models import ComputeRequest

    store = MemoryComputeStore()
    store.submit_many([ComputeRequest(id=f"c-{i}", caller="a", number=str(100 + i), owner=True, submitted_at=1.0)
                       for i in range(6)], 1.0)

    class FinishingQueue(MemoryQueue):
        # While the first pass sends, its two jobs finish and their worker triggers a dispatch, which finds
        # the lease held. Without the hand-over the freed slots would wait for the next trigger.
        def send(self, messages):
            super().send(messages)
            if len(self.sent) == 1:
                store.counts["a"].in_flight -= 2
                assert dispatcher.dispatch(2.0) == 0

    dispatcher = Dispatcher(store=store, jobs=FinishingQueue(), origin="compute", job_spec=compute_job_spec, max_in_flight=2, jobs_per_message=2)
    assert dispatcher.dispatch(1.0) == 4
    assert [len(JobEnvelope.model_validate_json(m.body).jobs) for m in dispatcher.jobs.sent] == [2, 2]
    assert {m.group_id for m in dispatcher.jobs.sent} == {"a"}  # MessageGroupId: the caller, for SQS fair queues
    assert store.take_lease("next", 3.0, 30) is not None  # and the lease was let go


def test_weighted_fair_shares_give_a_caller_of_weight_two_twice_the_slots():
    assert fair_shares({"a": 100, "b": 100}, 30, 0, {}, quantum=1, weights={"a": 2, "b": 1}) == {"a": 20, "b": 10}
    assert fair_shares({"a": 100, "b": 100}, 30, 0, {}, quantum=10, weights={"a": 2, "b": 1}) == {"a": 20, "b": 10}
    # Service already given counts against the weight: a was admitted 20 (10 per unit of weight), so b catches up.
    assert fair_shares({"a": 100, "b": 100}, 10, 0, {"a": 20, "b": 0}, quantum=1, weights={"a": 2, "b": 1},
                       starts={"a": 10.0, "b": 0.0}) == {"b": 10}


def test_an_admin_weighs_a_caller_and_dispatch_shares_the_window_by_weight(client, c):
    c.compute.take_lease("elsewhere", time.time(), 30)  # another dispatcher holds admission while both submit
    post(client, "/api/compute/batch", {"numbers": [str(n) for n in range(1000, 1100)]}, caller="alice")
    post(client, "/api/compute/batch", {"numbers": [str(n) for n in range(2000, 2100)]}, caller="bob")
    assert c.jobs_queue.sent == []
    response = client.http.put("/api/callers/alice", body=json.dumps({"weight": 3}),
                               headers={"Content-Type": "application/json", "Authorization": "Bearer secret"})
    assert response.status_code == 200 and response.json_body == {"caller": "alice", "weight": 3.0}
    c.compute_dispatcher.dispatch(time.time() + 31)  # once that lease has run out
    admitted = [JobEnvelope.model_validate_json(m.body) for m in c.jobs_queue.sent]
    per_caller = {name: sum(len(e.jobs) for e in admitted if e.group == name) for name in ("alice", "bob")}
    assert per_caller == {"alice": 15, "bob": 5}  # a window of 20 split 3:1
    # One weight for the caller, in every way in: its typed jobs' admission has it too, before it submits any.
    weights = {x["origin"]: x["weight"] for x in get(client, "/api/callers")[1]["callers"] if x["caller"] == "alice"}
    assert weights == {"compute": 3.0, "typed": 3.0}


def test_weighing_a_caller_needs_the_admin_token_and_a_positive_bounded_number(client, c):
    headers = {"Content-Type": "application/json"}
    assert client.http.put("/api/callers/alice", body=json.dumps({"weight": 2}), headers=headers).status_code == 401
    for bad in (0, -1, 101, "2", True, None):
        response = client.http.put("/api/callers/alice", body=json.dumps({"weight": bad}),
                                   headers={**headers, "Authorization": "Bearer secret"})
        assert response.status_code == 400 and response.json_body["fields"][0]["field"] == "weight", bad
    assert c.compute.counts == {} and c.typed_jobs.counts == {}  # nothing was stored


def test_a_throttled_submit_is_admitted_when_its_request_comes_back_on_the_ticks_queue(client):
    c = MemoryContainer(compute_max_in_flight=20, compute_jobs_per_message=5, admission_ask_every_s=60)
    reset_container(c)
    post(client, "/api/compute/batch", {"numbers": ["1001", "1002"]})  # dispatched inline
    post(client, "/api/compute/batch", {"numbers": ["1003", "1004"]})  # within the interval: asks instead
    admitted = [n for m in c.jobs_queue.sent for n in (j.number for j in JobEnvelope.model_validate_json(m.body).jobs)]
    assert sorted(admitted) == ["1001", "1002"]
    [request] = c.ticks_queue.sent
    assert request.delay_seconds == 1
    event = client.events.generate_sqs_event(message_bodies=[request.body], queue_name="pacer-ticks")
    client.lambda_.invoke("pace_tick", event)
    admitted = [n for m in c.jobs_queue.sent for n in (j.number for j in JobEnvelope.model_validate_json(m.body).jobs)]
    assert sorted(admitted) == ["1001", "1002", "1003", "1004"]


def test_a_holder_asked_again_and_again_stops_going_round_once_its_budget_is_spent_and_lets_the_lease_go():
    # Under a steady stream of submits someone asks during every pass. A holder that went round for all of them
    # ran past pace_tick's 10 s timeout and died holding the lease: admission stalled until the lease ran out.
    from chalicelib.aws.memory import MemoryQueue
    from chalicelib.compute.memory import MemoryComputeStore
    from chalicelib.compute.models import ComputeRequest

    store = MemoryComputeStore()
    store.submit_many([ComputeRequest(id=f"c-{i}", caller="a", number=str(100 + i), owner=True, submitted_at=1.0)
                       for i in range(40)], 1.0)
    # Each reading of the dispatcher's clock is half a second later: a pass reads it at its start, as it sends,
    # and after it, so it takes a second and a half.
    seconds = iter(100 + k / 2 for k in range(200))

    class AskingQueue(MemoryQueue):
        def send(self, messages):
            super().send(messages)
            store.counts["a"].in_flight -= 2  # the jobs finish at once, and their worker asks for another pass
            assert dispatcher.dispatch(100.5) == 0

    dispatcher = Dispatcher(store=store, jobs=AskingQueue(), origin="compute", job_spec=compute_job_spec,
                            max_in_flight=2, jobs_per_message=2, clock=lambda: next(seconds))
    assert dispatcher.lease_s <= 10  # no longer than pace_tick's timeout
    assert dispatcher.dispatch(99.0) == 4  # two passes: the budget of 2 s was spent after the second
    assert len(dispatcher.jobs.sent) == 2 < dispatcher.max_passes
    assert store.take_lease("next", 150.0, 10) is not None  # let go, not left to run out


def test_a_message_admitted_but_never_sent_goes_out_a_minute_later_and_the_outbox_is_read_at_most_every_15_s():
    from chalicelib.aws.memory import MemoryQueue
    from chalicelib.compute.memory import MemoryComputeStore
    from chalicelib.compute.models import ComputeRequest

    store = MemoryComputeStore()
    store.submit_many([ComputeRequest(id=f"c-{i}", caller="a", number=str(100 + i), owner=True, submitted_at=1.0)
                       for i in range(2)], 1.0)
    reads: list[float] = []
    outbox = store.outbox
    store.outbox = lambda before: reads.append(before) or outbox(before)  # type: ignore[method-assign]

    class CrashingQueue(MemoryQueue):  # the dispatcher dies between admitting and sending
        def send(self, messages):
            if not self.sent and not getattr(self, "crashed", False):
                self.crashed = True
                raise RuntimeError("killed")
            super().send(messages)

    dispatcher = Dispatcher(store=store, jobs=CrashingQueue(), origin="compute", job_spec=compute_job_spec,
                            max_in_flight=10, jobs_per_message=2)
    with pytest.raises(RuntimeError):
        dispatcher.dispatch(100.0)
    for at in (101.0, 110.0, 120.0, 150.0):  # passes every few seconds; the message is not a minute old yet
        dispatcher.dispatch(at)
    assert dispatcher.jobs.sent == [] and len(reads) == 3  # at 100, 120 and 150: not on every pass
    dispatcher.dispatch(166.0)
    [resent] = dispatcher.jobs.sent
    assert [j.id for j in JobEnvelope.model_validate_json(resent.body).jobs] == ["c-0", "c-1"]
    assert store.outbox(1000.0) == []  # sent: forgotten
