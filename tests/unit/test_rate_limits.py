"""Rate limits on typed jobs: even slots per type and per caller, kept by admission (admission/limits.py)."""
import json
import math
import time
from collections import Counter

import pytest

from chalicelib.admission.limits import Limiter
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

def test_slots_are_spaced_evenly_and_none_is_earlier_than_now():
    limiter = Limiter(Lease(per_minute={"type:email": 120}), now=100.0, lookahead_s=1.5)
    assert [limiter.take(["type:email"]) for _ in range(5)] == [100.0, 100.5, 101.0, 101.5, None]
    assert limiter.held == {"type:email"}
    # Idle for a minute: no credit piled up, the next slot is now, not a burst of 120.
    later = Limiter(limiter.lease, now=160.0, lookahead_s=1.5)
    assert later.allowance("type:email", 1000) == 4 and later.take(["type:email"]) == 160.0


def test_a_job_keeps_to_every_limit_it_is_under_and_an_unlimited_one_goes_now():
    limiter = Limiter(Lease(per_minute={"type:email": 600, "caller:bob": 60}), now=0.0, lookahead_s=0.5)
    assert limiter.take(["type:email", "caller:bob"]) == 0.0
    assert limiter.take(["type:email", "caller:bob"]) is None  # bob's next slot is a second away
    assert limiter.held == {"caller:bob"}
    assert limiter.take(["type:email", "caller:ann"]) == 0.1  # the type's next slot
    assert limiter.take(["type:report", "caller:ann"]) == 0.0


def test_a_slot_is_sent_with_the_delay_that_makes_it_visible_in_its_own_wall_clock_second():
    limiter = Limiter(Lease(), now=100.7)
    assert [limiter.delay(slot) for slot in (100.7, 100.99, 101.0, 101.6, 102.1)] == [0, 0, 1, 1, 2]


# ---- admission under limits ----

def clock_requests(c, since=0) -> list[tuple[AdmitRequest, int]]:
    return [(AdmitRequest.model_validate_json(m.body), m.delay_seconds) for m in c.ticks_queue.sent[since:]]


def on_time(c, now) -> int:
    """Deliver the limits' clock's latest request: its pass gives out the slots."""
    request, _ = clock_requests(c)[-1]
    return c.typed_dispatcher.dispatch(now, request.timer)


def test_a_type_at_its_limit_holds_only_its_own_jobs_and_its_clock_gives_out_the_slots(client, c):
    assert limit(client, type="email", per_minute=120) == (200, {"type": "email", "caller": None, "per_minute": 120})
    c.typed_dispatcher.store.take_lease("elsewhere", time.time(), 30)  # submits queue up; this test dispatches
    submit(client, EMAIL, 20)
    submit(client, NOTIFICATION, 5)  # behind the emails in the backlog
    c.typed_dispatcher.store.lease = None
    now = time.time() + 1
    # An ordinary pass (a submit's, a settled message's) admits the other types and starts the limits' clock.
    assert c.typed_dispatcher.dispatch(now) == 5
    assert Counter(t for t, _ in sent_jobs(c)) == {"notification": 5}
    [(request, delay)] = clock_requests(c)
    assert request.admit == "typed" and request.timer and delay == 0
    assert c.typed_dispatcher.dispatch(now + 0.1) == 0 and len(c.ticks_queue.sent) == 1  # one clock at a time
    # The clock's pass gives out the slots due within 1.5 s, each visible in its own second, and goes on.
    assert on_time(c, now + 0.2) == 4
    assert sorted(d for t, d in sent_jobs(c, 1)) == [Limiter(Lease(), now + 0.2).delay(now + 0.2 + k * 0.5)
                                                      for k in range(4)]
    assert clock_requests(c, 1) == [(request, 1)]
    assert c.typed_dispatcher.dispatch(now + 0.3, "another-token") == 0  # a stale clock's request gives out nothing
    assert on_time(c, now + 1.2) == 2


def test_a_callers_limit_leaves_the_window_to_the_others(client, c):
    assert limit(client, caller="alice", per_minute=60)[0] == 200
    c.typed_dispatcher.store.take_lease("elsewhere", time.time(), 30)
    submit(client, EMAIL, 30, caller="alice")
    submit(client, EMAIL, 30, caller="bob")
    c.typed_dispatcher.store.lease = None
    now = time.time()
    assert c.typed_dispatcher.dispatch(now) == 30  # bob's
    assert on_time(c, now + 0.1) == 2  # alice's slots now and a second on


def test_a_clock_whose_request_finds_the_lease_held_comes_back_at_once(client, c):
    assert limit(client, type="email", per_minute=60)[0] == 200
    submit(client, EMAIL, 5)
    now = time.time() + 1
    c.typed_dispatcher.dispatch(now)
    [(request, _)] = clock_requests(c)
    c.typed_dispatcher.store.take_lease("elsewhere", now, 30)
    assert c.typed_dispatcher.dispatch(now + 0.1, request.timer) == 0
    assert clock_requests(c, 1) == [(request, 0)]


def test_over_a_minute_of_clock_passes_each_wall_clock_second_holds_the_limits_share(client, c):
    """600 a minute, the clock's pass about every second, other passes between: 10 visible in each second."""
    assert limit(client, type="email", per_minute=600)[0] == 200
    c.typed_dispatcher.store.take_lease("elsewhere", time.time(), 30)
    submit(client, EMAIL, 700)
    c.typed_dispatcher.store.lease = None
    start = math.floor(time.time()) + 5.37
    visible: Counter[int] = Counter()
    now = start
    c.typed_dispatcher.dispatch(now)
    while now < start + 60:
        sent = len(c.jobs_queue.sent)
        on_time(c, now)
        c.typed_dispatcher.dispatch(now + 0.4)  # an ordinary pass between: it gives out no slot
        for message in c.jobs_queue.sent[sent:]:
            visible[math.floor(now) + message.delay_seconds] += len(JobEnvelope.model_validate_json(message.body).jobs)
        now += 1.0 + (0.3 if int(now) % 7 == 0 else 0.05)  # the next request's delivery is a little late
    inner = [visible[second] for second in range(math.floor(start) + 1, math.floor(start) + 59)]
    assert max(inner) <= 11 and min(inner) >= 9
    assert abs(sum(inner) / len(inner) - 10) < 0.2


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
