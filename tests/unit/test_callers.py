"""GET /api/callers across the ways in, and one weight per caller, over the in-memory twins."""
import json
import time

import pytest

from chalicelib.admission.models import CallerCounts
from chalicelib.callers import service as callers
from chalicelib.callers.models import Settled
from chalicelib.core.jobs import JobEnvelope
from chalicelib.worker.worker import Record
from tests.fakes import MemoryContainer

ADMIN = {"Authorization": "Bearer secret"}
EMAIL = {"type": "email", "payload": {"to": "ann@example.com", "subject": "Hi", "body": "Hello"}}


@pytest.fixture
def c():
    return MemoryContainer(compute_max_in_flight=20, compute_jobs_per_message=5, typed_max_in_flight=20,
                           typed_jobs_per_message=5)


def call(client, method, path, body=None, headers=None):
    response = getattr(client.http, method)(path, headers={"Content-Type": "application/json", **(headers or {})},
                                            body=json.dumps(body) if body is not None else b"")
    return response.status_code, response.json_body


def run_workers(c) -> None:
    """Deliver what admission sent, as the runtime would; the worker refills the window after each message."""
    delivered = 0
    while c.jobs_queue.sent:
        c.worker.process([Record(f"m{delivered}", c.jobs_queue.sent.pop(0).body)], time.time)
        delivered += 1


def rows(client) -> dict[tuple[str, str], dict]:
    code, body = call(client, "get", "/api/callers")
    assert code == 200
    assert (body["sample_size"], body["window_s"]) == (callers.SAMPLE_SIZE, callers.WINDOW_S)
    return {(row["caller"], row["origin"]): row for row in body["callers"]}


def test_callers_shows_a_row_per_caller_and_way_in_with_counts_throughput_and_queue_waits(client, c):
    call(client, "post", "/api/compute/batch", {"numbers": [str(n) for n in range(100, 112)]},
         {"X-Caller-ID": "alice"})
    for caller in ("alice", "bob", "bob"):
        call(client, "post", "/api/jobs", EMAIL, {"X-Caller-ID": caller})
    call(client, "post", "/api/jobs", {**EMAIL, "scheduled_for": "2099-01-01T00:00:00Z"}, {"X-Caller-ID": "carol"})
    run_workers(c)

    shown = rows(client)
    assert list(shown) == [("alice", "compute"), ("alice", "typed"), ("bob", "typed")]  # carol's job is not due
    figures = {key: (row["backlog"], row["in_flight"], row["done"], row["failed"], row["sampled"],
                     row["throughput_per_min"]) for key, row in shown.items()}
    assert figures == {("alice", "compute"): (0, 0, 12, 0, 12, 12.0), ("alice", "typed"): (0, 0, 1, 0, 1, 1.0),
                       ("bob", "typed"): (0, 0, 2, 0, 2, 2.0)}
    for row in shown.values():
        assert (row["weight"], row["limit"]) == (1.0, None)
        assert 0 <= row["p50_wait_s"] <= row["p95_wait_s"] < 5


def test_waiting_and_running_jobs_show_as_backlog_and_in_flight_with_no_figures_yet(client, c):
    call(client, "post", "/api/compute/batch", {"numbers": [str(n) for n in range(100, 130)]},
         {"X-Caller-ID": "alice"})
    alice = rows(client)[("alice", "compute")]
    assert (alice["backlog"], alice["in_flight"], alice["done"], alice["sampled"]) == (10, 20, 0, 0)
    assert (alice["throughput_per_min"], alice["p50_wait_s"], alice["p95_wait_s"]) == (0.0, None, None)


def test_a_callers_weight_applies_to_its_typed_jobs_too_and_typed_admission_shares_by_it(client, c):
    c.typed_jobs.take_lease("elsewhere", time.time(), 30)  # another dispatcher holds admission while both submit
    for caller in ("alice", "bob"):
        for _ in range(20):
            call(client, "post", "/api/jobs", EMAIL, {"X-Caller-ID": caller})
    assert call(client, "put", "/api/callers/alice", {"weight": 3}, ADMIN) == (200, {"caller": "alice", "weight": 3.0})
    c.typed_dispatcher.dispatch(time.time() + 31)  # once that lease has run out
    admitted = [JobEnvelope.model_validate_json(m.body) for m in c.jobs_queue.sent]
    per_caller = {name: sum(len(e.jobs) for e in admitted if e.group == name) for name in ("alice", "bob")}
    assert per_caller == {"alice": 15, "bob": 5}  # a window of 20 split 3:1
    assert {key: row["weight"] for key, row in rows(client).items()} == {
        ("alice", "compute"): 3.0, ("alice", "typed"): 3.0, ("bob", "typed"): 1.0}


def settled(*ages: float, now: float, wait: float | None = 0.5) -> list[Settled]:
    return [Settled(finished_at=now - age, queue_wait_s=wait) for age in ages]


def test_throughput_counts_the_jobs_settled_in_the_last_minute():
    now = 1_800_000_000.0
    assert callers.throughput_per_min(settled(1, 30, 59, 61, 300, now=now), now) == 3.0
    assert callers.throughput_per_min([], now) == 0.0


def test_throughput_from_a_full_sample_inside_the_minute_is_its_rate_over_its_span():
    now = 1_800_000_000.0
    # All 4 sampled jobs settled within 10 s, so older ones of the minute may be missing: 4 per 10 s is 24 a minute.
    assert callers.throughput_per_min(settled(1, 4, 7, 10, now=now), now, sample_size=4) == 24.0
    # One outside the minute shows that the sample covers it: a count, not a rate.
    assert callers.throughput_per_min(settled(1, 4, 7, 70, now=now), now, sample_size=4) == 3.0


class FakeWayIn:
    """A way in's caller figures: given counts and samples, and each sample read it was asked for."""

    def __init__(self, counts: list[CallerCounts], samples: dict[str, list[Settled]]):
        self.counts, self.samples, self.reads = counts, samples, []

    def callers(self):
        return self.counts

    def limits(self):
        return {}

    def settled(self, caller, limit):
        self.reads.append((caller, limit))
        return self.samples.get(caller, [])[:limit]


def test_waits_are_nearest_rank_percentiles_of_the_queue_waits_and_an_idle_row_reads_no_sample():
    now = 1_800_000_000.0
    waits = [Settled(finished_at=now - 100 - i, queue_wait_s=float(i)) for i in range(1, 21)]
    compute = FakeWayIn([CallerCounts(caller="zed", done=20), CallerCounts(caller="amy", backlog=3, weight=2)],
                        {"zed": waits + settled(200, now=now, wait=None)})  # a sample from before waits were kept
    view = callers.view({"compute": compute, "typed": FakeWayIn([], {})}, now)
    amy, zed = view.callers
    assert (zed.caller, zed.sampled, zed.p50_wait_s, zed.p95_wait_s, zed.throughput_per_min) == ("zed", 21, 10, 19, 0)
    assert (amy.caller, amy.weight, amy.backlog, amy.sampled, amy.p50_wait_s) == ("amy", 2, 3, 0, None)
    assert compute.reads == [("zed", callers.SAMPLE_SIZE)]  # amy has settled nothing: nothing to read


def test_a_callers_rate_limit_shows_on_its_typed_row(client, c):
    call(client, "post", "/api/jobs", EMAIL, {"X-Caller-ID": "alice"})
    call(client, "post", "/api/compute/batch", {"numbers": ["100"]}, {"X-Caller-ID": "alice"})
    assert call(client, "put", "/api/jobs/limits", {"caller": "alice", "per_minute": 90}, ADMIN)[0] == 200
    shown = rows(client)
    assert shown[("alice", "typed")]["limit"] == 90 and shown[("alice", "compute")]["limit"] is None
