"""The pacing plan: which jobs a tick claims, how they are spread, and when the next tick comes."""
from chalicelib.runs.models import Run
from chalicelib.runs.pacing import PaceSettings, due_count, job_number, plan_tick

PACE = PaceSettings(lookahead_s=1.0, max_in_flight=1000, jobs_per_message=50)


def a_run(**changes) -> Run:
    fields = dict(run_id="r1", state="running", x=600, y=1.0, anchor_at=1000.0, tick_token="t",
                  started_at=1000.0, updated_at=1000.0)
    fields.update(changes)
    return Run(**fields)


def test_ten_jobs_a_second_owe_ten_more_jobs_each_second():
    run = a_run()
    assert [due_count(run, 1000.0 + s) for s in (0, 1, 2, 10)] == [1, 11, 21, 101]


def test_a_fractional_y_paces_at_x_per_y_minutes():
    run = a_run(x=3, y=0.5)  # 6 a minute: one every 10 s
    assert due_count(run, 1000.0 + 59.9) == 6
    assert due_count(run, 1000.0 + 60.0) == 7


def test_a_tick_claims_only_what_is_due_within_the_lookahead():
    plan = plan_tick(a_run(), now=1000.0, pace=PACE)
    assert (plan.start, plan.end) == (0, 11)  # jobs due in [1000, 1001]
    assert plan.next_tick_delay == 1


def test_jobs_are_grouped_by_the_second_they_are_due_so_they_arrive_evenly():
    run = a_run(x=120)  # 2 a second
    plan = plan_tick(run, now=1000.0, pace=PaceSettings(lookahead_s=3.0, max_in_flight=1000))
    delays = [(timed.delay, len(timed.envelope.jobs)) for timed in plan.messages]
    assert delays == [(0, 2), (1, 2), (2, 2), (3, 1)]


def test_the_in_flight_window_caps_what_an_unlimited_rate_claims():
    run = a_run(x=1_000_000, y=0.01, enqueued=900, settled=400)
    plan = plan_tick(run, now=1000.0, pace=PACE)
    assert plan.end - plan.start == 500  # 1000 allowed in flight, 500 already are
    assert plan.next_tick_delay == 1
    assert max(len(t.envelope.jobs) for t in plan.messages) == 50


def test_a_run_with_a_total_stops_claiming_at_the_total_and_ends_its_chain():
    run = a_run(x=1_000_000, y=0.01, total=120)
    plan = plan_tick(run, now=1000.0, pace=PACE)
    assert plan.end == 120
    assert plan.next_tick_delay is None


def test_a_stopped_run_claims_nothing_and_ends_its_chain():
    plan = plan_tick(a_run(state="stopped"), now=1005.0, pace=PACE)
    assert plan.end == plan.start and plan.next_tick_delay is None


def test_a_slow_run_still_ticks_every_second_so_a_rate_change_bites_at_once():
    run = a_run(x=1, y=1.0, enqueued=1)  # one a minute; job 1 is due at 1060
    plan = plan_tick(run, now=1001.0, pace=PACE)
    assert plan.end == plan.start
    assert plan.next_tick_delay == 1


def test_job_numbers_are_the_same_every_time_they_are_derived():
    assert job_number("r1", 7) == job_number("r1", 7)
    assert job_number("r1", 7) != job_number("r1", 8)
    assert 2 <= int(job_number("r1", 7)) < 10**12 + 2
