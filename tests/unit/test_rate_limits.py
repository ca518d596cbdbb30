"""Rate limits on typed jobs: even slots per type and per caller, kept by admission (admission/limits.py)."""
import json
import math
import time
from collections import Counter

import pytest

from chalicelib.admission.dispatcher import chunked
from chalicelib.admission.limits import HOLD_FROM, Limiter, delay_until, next_giving_moment, not_before
from chalicelib.admission.models import AdmitRequest, Lease
from chalicelib.core.jobs import JobEnvelope
from tests.fakes import MemoryContainer

ADMIN = {"Authorization": "Bearer secret", "Content-Type": "application/json"}
EMAIL = {"type": "email", "payload": {"to": "ann@example.com", "subject": "Hi", "body": "Hello"}}
NOTIFICATION = {"type": "notification", "payload": {"user_id": "u1", "channel": "push", "message": "Ping"}}


@pytest.fixture
def c():
    return MemoryContainer(typed_max_in_flight=1000, typed_jobs_per_message=10)


def submit(client, body, count, caller="alice"):
    for _ in range(count):
        response = client.http.post("/api/jobs", body=json.dumps(body),
                                    headers={"Content-Type": "application/json", "X-Caller-ID": caller})
        assert response.status_code == 201


def limit(client, **body):
    response = client.http.put("/api/jobs/limits", body=json.dumps(body), headers=ADMIN)
    return response.status_code, response.json_body


def sent_jobs(c, since=0):
    """(job type, delay) of every job sent to the jobs queue, from message `since` on."""
    jobs = []
    for message in c.jobs_queue.sent[since:]:
        for spec in JobEnvelope.model_validate_json(message.body).jobs:
            jobs.append((spec.type, message.delay_seconds))
    return jobs


# ---- the limiter ----

def test_an_early_pass_gives_out_its_seconds_share_and_the_next():
    limiter = Limiter(Lease(per_minute={"type:email": 120}), now=100.2)
    assert [limiter.take(["type:email"]) for _ in range(5)] == [100.0, 100.0, 101.0, 101.0, None]
    assert limiter.held == {"type:email"} and limiter.lease.given == {"type:email": {100.0: 2, 101.0: 2}}
    # Idle for a minute: no credit piled up, the next slots start with the pass's own second, not a burst of 120.
    later = Limiter(limiter.lease, now=160.1)
    assert later.allowance("type:email", 1000) == 4 and later.take(["type:email"]) == 160.0


def test_a_pass_late_in_its_second_gives_out_only_the_next_seconds_slots():
    lease = Lease(per_minute={"type:email": 600})
    late = Limiter(lease, now=100.7)
    assert late.allowance("type:email", 50) == 10 and late.held == {"type:email"}
    assert [late.take(["type:email"]) for _ in range(11)] == [101.0] * 10 + [None]
    assert late.take(["type:report"]) == 100.7  # unlimited types go on
    early = Limiter(lease, now=101.05)  # its own second is given out already
    assert [early.take(["type:email"]) for _ in range(11)] == [102.0] * 10 + [None]


def test_a_job_keeps_to_every_limit_it_is_under():
    limiter = Limiter(Lease(per_minute={"type:email": 600, "caller:bob": 60}), now=0.1)
    assert limiter.take(["type:email", "caller:bob"]) == 0.0
    assert limiter.take(["type:email", "caller:bob"]) == 1.0  # bob's next slot
    assert limiter.take(["type:email", "caller:bob"]) is None
    assert limiter.held == {"caller:bob"}
    assert limiter.take(["type:email", "caller:ann"]) == 0.0  # the type's second still has room
    assert limiter.take(["type:report", "caller:ann"]) == 0.1


def test_a_raised_limit_tops_up_the_second_already_given_out_and_a_lowered_one_gives_it_no_more():
    lease = Lease(per_minute={"type:email": 600})
    early = Limiter(lease, now=100.3)
    assert [early.take(["type:email"]) for _ in range(20)] == [100.0] * 10 + [101.0] * 10
    lease.per_minute["type:email"] = 1200  # raised late in second 100: the next pass tops 101 up to 20
    raised = Limiter(lease, now=100.8)
    assert [raised.take(["type:email"]) for _ in range(11)] == [101.0] * 10 + [None]
    early = Limiter(lease, now=101.1)
    assert [early.take(["type:email"]) for _ in range(21)] == [102.0] * 20 + [None]
    lease.per_minute["type:email"] = 300  # lowered: 102 keeps the 20 already sent, 103 gets 5
    lowered = Limiter(lease, now=102.2)
    assert [lowered.take(["type:email"]) for _ in range(6)] == [103.0] * 5 + [None]


def test_a_pass_counts_only_limits_in_force_and_their_windows_not_yet_over():
    lease = Lease(per_minute={"type:email": 600, "caller:alice": 60, "caller:bob": 5},
                  given={"type:email": {99.0: 10, 100.0: 10, 101.0: 4},  # the second before is over
                         "caller:alice": {99.0: 1},  # over too: alice is left out
                         "caller:bob": {96.0: 1},  # a 12 s window, from 96 to 108: not over
                         "caller:carol": {100.0: 1}})  # no longer limited
    Limiter(lease, now=100.2)
    assert lease.given == {"type:email": {100.0: 10, 101.0: 4}, "caller:bob": {96.0: 1}}


def test_a_limit_slower_than_one_a_second_gives_one_job_in_each_of_its_windows():
    lease = Lease(per_minute={"caller:bob": 5})  # one in each 12 s, on a grid from the epoch
    assert Limiter(lease, now=120.2).take(["caller:bob"]) == 120.0
    assert Limiter(lease, now=123.2).take(["caller:bob"]) is None
    assert Limiter(lease, now=131.1).take(["caller:bob"]) == 132.0  # the next window starts in the next second
    assert lease.given == {"caller:bob": {120.0: 1, 132.0: 1}}


def test_a_slot_is_sent_with_the_delay_that_makes_it_visible_in_its_own_second_counted_from_the_send():
    assert [delay_until(slot, 100.3) for slot in (100.0, 100.99, 101.0, 101.6, 102.0)] == [0, 0, 1, 1, 2]
    assert delay_until(101.0, 101.02) == 0  # a pass given slots in 100 that sends in 101: not a second late


def test_a_later_seconds_message_sent_late_in_a_second_goes_a_second_early_for_the_worker_to_hold():
    assert [delay_until(slot, 100.6) for slot in (100.0, 101.0, 101.6, 102.0)] == [0, 0, 0, 1]
    assert [not_before(slot, 100.6) for slot in (100.0, 100.7, 101.0, 101.6, 102.0)] == [None, None, 101.0, 101.0,
                                                                                          102.0]


def test_a_message_holds_jobs_of_one_second_unlimited_ones_with_those_limited_in_the_pass_own_second():
    timed = [(100.7, "unlimited"), (100.0, "email"), (101.0, "next"), (101.0, "next 2"), (100.7, "late")]
    assert [chunk.items for chunk in chunked(timed, 2)] == [["unlimited", "email"], ["next", "next 2"], ["late"]]


def test_a_late_timer_waits_for_the_next_seconds_start_and_an_early_one_not_at_all():
    assert Limiter(Lease(per_minute={"type:email": 600}), now=100.29).take(["type:email"]) == 100.0
    assert Limiter(Lease(per_minute={"type:email": 600}), now=100.31).take(["type:email"]) == 101.0
    assert [next_giving_moment(t) for t in (100.29, 100.31, 100.999, 101.0)] == [100.29, 101.0, 101.0, 101.0]


# ---- admission under limits ----

def test_a_type_at_its_limit_holds_only_its_own_jobs_and_asks_for_the_next_pass(client, c):
    assert limit(client, type="email", per_minute=120) == (200, {"type": "email", "caller": None, "per_minute": 120})
    c.typed_dispatcher.store.take_lease("elsewhere", time.time(), 30)  # submits queue up; this test dispatches
    submit(client, EMAIL, 20)
    submit(client, NOTIFICATION, 5)  # behind the emails in the backlog
    c.typed_dispatcher.store.lease = None
    now = math.floor(time.time()) + 1.2
    assert c.typed_dispatcher.dispatch(now) == 4 + 5
    jobs = sent_jobs(c)
    assert Counter(t for t, _ in jobs) == {"email": 4, "notification": 5}
    assert sorted(d for t, d in jobs if t == "email") == [0, 0, 1, 1]
    asked = [AdmitRequest.model_validate_json(m.body) for m in c.ticks_queue.sent]
    assert asked == [AdmitRequest(admit="typed", early=True)] and c.ticks_queue.sent[0].delay_seconds == 1
    assert c.typed_dispatcher.dispatch(now + 0.2) == 0  # the slots are given out; the request is on its way
    assert len(c.ticks_queue.sent) == 1
    assert c.typed_dispatcher.dispatch(now + 1) == 2  # the next second's early pass: its next second's slots


def test_a_callers_limit_leaves_the_window_to_the_others(client, c):
    assert limit(client, caller="alice", per_minute=60)[0] == 200
    c.typed_dispatcher.store.take_lease("elsewhere", time.time(), 30)
    submit(client, EMAIL, 30, caller="alice")
    submit(client, EMAIL, 30, caller="bob")
    c.typed_dispatcher.store.lease = None
    assert c.typed_dispatcher.dispatch(math.floor(time.time()) + 1.1) == 2 + 30  # alice: a slot in each second


def visible_per_second(c, passes) -> Counter[int]:
    """Run a dispatch pass at each time; count the jobs each lets start in each wall-clock second: visible then, or
    visible earlier and held by the worker until then."""
    visible: Counter[int] = Counter()
    for now in passes:
        sent = len(c.jobs_queue.sent)
        c.typed_dispatcher.dispatch(now)
        for message in c.jobs_queue.sent[sent:]:
            envelope = JobEnvelope.model_validate_json(message.body)
            shown = now + message.delay_seconds
            if envelope.not_before is not None and envelope.not_before > shown:
                assert envelope.not_before - shown <= 1  # held at most a second
                second = envelope.not_before
            else:
                assert now - math.floor(now) < HOLD_FROM  # visible early in its second: it starts in it
                second = shown
            visible[math.floor(second)] += len(envelope.jobs)
    return visible


@pytest.mark.parametrize("moments", [((0.05,), (0.2, 0.8), (0.25, 0.55, 0.95)), ((0.29, 0.7),), ((0.0, 0.1, 0.2),)])
def test_over_a_minute_of_passes_at_odd_moments_each_second_holds_the_limits_share(client, c, moments):
    """600 a minute, passes at odd moments (as submits, settled messages and requests come), one or more early in
    each second: 10 jobs visible in each second, each early in it."""
    assert limit(client, type="email", per_minute=600)[0] == 200
    c.typed_dispatcher.store.take_lease("elsewhere", time.time(), 30)
    submit(client, EMAIL, 700)
    c.typed_dispatcher.store.lease = None
    first = math.floor(time.time()) + 5
    passes = [first + k + moment for k in range(60) for moment in moments[k % len(moments)]]
    visible = visible_per_second(c, passes)
    assert [visible[first + k] for k in range(60)] == [10] * 60


def test_a_second_no_pass_gave_out_in_time_loses_its_share_and_the_next_is_not_doubled(client, c):
    assert limit(client, type="email", per_minute=600)[0] == 200
    c.typed_dispatcher.store.take_lease("elsewhere", time.time(), 30)
    submit(client, EMAIL, 100)
    c.typed_dispatcher.store.lease = None
    first = math.floor(time.time()) + 10
    # No pass in the second before the third, nor early in it: the third's slots go to no one.
    visible = visible_per_second(c, [first + 0.1, first + 2.7, first + 3.2])
    assert [visible[first + k] for k in range(5)] == [10, 10, 0, 10, 10]


# ---- the admin endpoint ----

@pytest.mark.parametrize("body, needle", [
    ({"type": "email", "caller": "alice", "per_minute": 5}, "exactly one"),
    ({"per_minute": 5}, "exactly one"),
    ({"type": "fax", "per_minute": 5}, "unknown job type"),
    ({"type": "email", "per_minute": 0}, "per_minute"),
    ({"type": "email", "per_minute": -3}, "per_minute"),
    ({"type": "email", "per_minute": "600"}, "per_minute"),
    ({"type": "email", "per_minute": 1e300}, "per_minute"),
    ({"type": "email"}, "per_minute"),
    ({"caller": "a#b", "per_minute": 5}, "caller"),
    ({"caller": " ", "per_minute": 5}, "caller"),
])
def test_a_bad_limit_gets_400_naming_the_problem_and_nothing_changes(client, c, body, needle):
    code, answer = limit(client, **body)
    assert code == 400 and needle in json.dumps(answer)
    assert client.http.get("/api/jobs/limits").json_body == {"limits": []}


def test_limits_need_the_admin_token_and_null_removes_one(client, c):
    response = client.http.put("/api/jobs/limits", body=json.dumps({"type": "email", "per_minute": 5}),
                               headers={"Content-Type": "application/json"})
    assert response.status_code == 401
    assert limit(client, type="email", per_minute=100)[0] == 200
    assert limit(client, caller="bob", per_minute=2.5)[0] == 200
    assert client.http.get("/api/jobs/limits").json_body == {"limits": [
        {"type": None, "caller": "bob", "per_minute": 2.5}, {"type": "email", "caller": None, "per_minute": 100}]}
    assert limit(client, type="email", per_minute=None)[0] == 200
    assert client.http.get("/api/jobs/limits").json_body["limits"] == [
        {"type": None, "caller": "bob", "per_minute": 2.5}]


def test_a_bot_claims_window_is_its_second_or_for_a_slow_limit_its_slots_whole_interval():
    from chalicelib.admission.limits import LimitWindow, limit_window
    assert limit_window(600, 1000.7) == LimitWindow(1000.0, 1001.0, 10)
    assert [limit_window(90, second).slots for second in range(1000, 1004)] == [2, 1, 2, 1]
    assert sum(limit_window(90, second + 0.5).slots for second in range(1000, 1060)) == 90
    assert limit_window(6, 1003.0) == LimitWindow(1000.0, 1010.0, 1)  # one slot in each 10 s of the grid
    assert limit_window(6, 1010.0).start == 1010.0
