"""Run lifecycle and the tick chain, over the in-memory adapters."""
import pytest

from chalicelib.core.errors import NoActiveRun, RunAlreadyActive, StaleWrite
from chalicelib.core.jobs import JobEnvelope
from chalicelib.runs import service as runs
from chalicelib.runs.models import ChangeRate, StartRun, Tick
from tests.fakes import MemoryContainer

T0 = 1_800_000_000.0


@pytest.fixture
def c():
    return MemoryContainer(lookahead_s=1.0)


def last_tick(c) -> Tick:
    return Tick.model_validate_json(c.ticks_queue.sent[-1].body)


def enqueued_job_ids(c) -> list[str]:
    return [job.id for m in c.jobs_queue.sent for job in JobEnvelope.model_validate_json(m.body).jobs]


def test_starting_a_run_stores_it_and_starts_its_tick_chain(c):
    run = runs.start_run(StartRun(x=600, y=1), c.pacer, T0)
    assert c.runs.current().run_id == run.run_id
    assert last_tick(c).token == run.tick_token


def test_a_second_run_while_one_is_active_is_refused(c):
    runs.start_run(StartRun(x=600, y=1), c.pacer, T0)
    with pytest.raises(RunAlreadyActive):
        runs.start_run(StartRun(x=1, y=1), c.pacer, T0 + 1)


def test_a_new_run_may_start_once_the_previous_one_completed(c):
    run = runs.start_run(StartRun(x=600, y=1, total=1), c.pacer, T0)
    c.runs.runs[run.run_id] = c.runs.runs[run.run_id].model_copy(update={"enqueued": 1, "processed": 1, "settled": 1})
    assert runs.start_run(StartRun(x=1, y=1), c.pacer, T0 + 1).run_id != run.run_id


def test_each_tick_emits_the_jobs_due_and_hands_the_clock_to_its_successor(c):
    runs.start_run(StartRun(x=600, y=1), c.pacer, T0)
    assert c.pacer.handle_tick(last_tick(c), T0) == "claimed 11"
    assert c.pacer.handle_tick(last_tick(c), T0 + 1) == "claimed 10"
    assert len(enqueued_job_ids(c)) == len(set(enqueued_job_ids(c))) == 21
    assert c.runs.slices(c.runs.current().run_id) == []  # the outbox is emptied once sent


def test_a_tick_delivered_twice_enqueues_nothing_the_second_time(c):
    runs.start_run(StartRun(x=600, y=1), c.pacer, T0)
    tick = last_tick(c)
    c.pacer.handle_tick(tick, T0)
    sent = len(c.jobs_queue.sent)
    assert c.pacer.handle_tick(tick, T0 + 0.5) == "stale"
    assert len(c.jobs_queue.sent) == sent
    assert c.runs.current().enqueued == 11


def test_a_tick_that_crashed_after_claiming_has_its_slice_resent_later(c):
    run = runs.start_run(StartRun(x=600, y=1), c.pacer, T0)
    c.jobs_queue.send = lambda messages: (_ for _ in ()).throw(RuntimeError("killed"))
    with pytest.raises(RuntimeError):
        c.pacer.handle_tick(last_tick(c), T0)
    del c.jobs_queue.send  # the process restarts; sending works again
    assert c.pacer.handle_tick(last_tick(c), T0 + 1) == "claimed 10"  # too soon to call the slice abandoned
    assert c.pacer.handle_tick(last_tick(c), T0 + 12) .startswith("claimed")
    ids = enqueued_job_ids(c)
    assert {f"{run.run_id}:{i:08d}" for i in range(11)} <= set(ids)


def test_a_rate_change_retimes_the_jobs_not_yet_enqueued_from_the_next_tick(c):
    runs.start_run(StartRun(x=60, y=1), c.pacer, T0)  # 1 a second
    c.pacer.handle_tick(last_tick(c), T0)  # claims jobs 0 and 1 (due by T0 + 1)
    runs.change_rate(ChangeRate(x=600, y=1), c.pacer, T0 + 0.5)
    # Job 2 was due at T0+2; at 10/s it is due at T0+0.6, then every 0.1 s up to T0+2.
    assert c.pacer.handle_tick(last_tick(c), T0 + 1) == "claimed 15"
    assert c.runs.current().x == 600


def test_a_tick_planned_on_the_old_rate_cannot_land_after_a_rate_change(c):
    runs.start_run(StartRun(x=60, y=1), c.pacer, T0)
    read_before_change = c.runs.current()
    runs.change_rate(ChangeRate(x=600, y=1), c.pacer, T0 + 0.5)
    with pytest.raises(StaleWrite):
        c.runs.advance(read_before_change, end=5, next_token="late", now=T0 + 0.6)


def test_stopping_a_run_ends_its_chain_and_nothing_more_is_enqueued(c):
    runs.start_run(StartRun(x=600, y=1), c.pacer, T0)
    c.pacer.handle_tick(last_tick(c), T0)
    runs.stop_run(c.pacer, T0 + 0.5)
    assert c.pacer.handle_tick(last_tick(c), T0 + 1) == "stale"
    assert c.runs.current().enqueued == 11
    with pytest.raises(NoActiveRun):
        runs.stop_run(c.pacer, T0 + 2)


def test_the_watchdog_restarts_a_chain_whose_tick_was_lost(c):
    runs.start_run(StartRun(x=600, y=1), c.pacer, T0)
    c.ticks_queue.drain()  # the first tick is lost
    assert c.pacer.watchdog(T0 + 5).startswith("healthy")  # a silent second or two is normal
    assert c.pacer.watchdog(T0 + 60).startswith("restarted")
    assert c.pacer.handle_tick(last_tick(c), T0 + 60).startswith("claimed")


def test_status_reports_counters_and_the_rate_achieved(c):
    runs.start_run(StartRun(x=600, y=1, total=100), c.pacer, T0)
    c.pacer.handle_tick(last_tick(c), T0)
    status = runs.get_status(c.runs, T0 + 1)
    assert (status.state, status.enqueued, status.in_flight, status.configured_per_min) == ("running", 11, 11, 600.0)
    assert status.achieved.enqueued_per_min == 660.0  # 11 in the first second
    assert len(status.series) == 60 and status.series[-2].enqueued == 11


def test_status_is_idle_before_any_run(c):
    assert runs.get_status(c.runs, T0).state == "idle"
