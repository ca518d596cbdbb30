"""Heartbeats and the fleet view."""
from chalicelib.fleet.memory import MemoryFleetStore
import pytest

from chalicelib.core.errors import InvalidInput
from chalicelib.fleet.service import Heartbeat, bot_count, fleet_view, set_bot_count, set_concurrency


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_worker_is_busy_while_it_holds_a_batch_and_counts_its_jobs():
    store, clock = MemoryFleetStore(), Clock(1000.0)
    beat = Heartbeat(store, "w1", interval_s=3600, clock=clock)
    with beat.busy() as done:
        assert store.saved["w1"].state == "busy"  # written when the batch starts
        done(7)
    assert store.saved["w1"].state == "busy"  # a second write within the second waits for the timer
    clock.now += 1.5
    with beat.busy() as done:
        done(3)
    assert (store.saved["w1"].state, store.saved["w1"].jobs_done) == ("busy", 7)
    clock.now += 1.5
    beat.beat_now()
    assert (store.saved["w1"].state, store.saved["w1"].jobs_done) == ("idle", 10)


def test_a_started_worker_is_listed_idle_before_its_first_batch():
    store, clock = MemoryFleetStore(), Clock(1000.0)
    beat = Heartbeat(store, "w1", interval_s=3600, clock=clock)
    assert fleet_view(store, 1000.0, 120).workers == []
    beat.start()
    [worker] = fleet_view(store, 1000.0, 120).workers
    assert (worker.id, worker.state, worker.jobs_done) == ("w1", "idle", 0)
    beat.start()  # again: one more beat, still one timer
    assert beat._thread is not None and beat._thread.is_alive()


def test_a_worker_silent_longer_than_the_limit_shows_as_down():
    store, clock = MemoryFleetStore(), Clock(1000.0)
    Heartbeat(store, "w1", interval_s=3600, clock=clock).beat_now()
    clock.now = 1100.0
    Heartbeat(store, "w2", interval_s=3600, clock=clock).beat_now()
    view = fleet_view(store, now=1125.0, down_after_s=120)
    assert {w.id: w.state for w in view.workers} == {"w1": "down", "w2": "idle"}
    assert view.workers[0].seconds_since_beat == 125.0


def test_the_desired_concurrency_is_stored_for_the_runtime_to_follow():
    store = MemoryFleetStore()
    assert fleet_view(store, 0, 120).concurrency is None
    set_concurrency(store, 4, now=0)
    assert store.desired == {"process_jobs": 4}
    assert fleet_view(store, 0, 120).concurrency == 4


def test_the_desired_bot_count_is_stored_for_the_local_stack_to_follow():
    store = MemoryFleetStore()
    assert bot_count(store).count is None
    assert set_bot_count(store, 2, now=0, maximum=10).count == 2
    assert bot_count(store).count == 2 and store.desired == {}


def test_a_bot_count_above_the_stages_maximum_is_refused_and_not_stored():
    store = MemoryFleetStore()
    with pytest.raises(InvalidInput) as refused:
        set_bot_count(store, 4, now=0, maximum=3)
    assert refused.value.fields == [{"field": "count", "message": "must be at most 3 on this stage"}]
    assert store.desired_bots is None
