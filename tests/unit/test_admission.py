"""Amortised follow-up admission: few dispatch passes, and no job left waiting (admission/service.py)."""

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from chalicelib.admission.models import AdmitRequest
from chalicelib.admission.service import Admission
from chalicelib.aws.memory import MemoryQueue
from chalicelib.clock import CLOCK_MESSAGES, Clock as TicksClock
from chalicelib.core.jobs import JobEnvelope, JobSpec


@dataclass
class CountingDispatcher:
    max_in_flight: int = 100
    passes: list[float] = field(default_factory=list)

    def dispatch(self, now: float) -> int:
        self.passes.append(now)
        return 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def admission(ask_every_s=0.5):
    clock, ticks, dispatcher = Clock(), MemoryQueue(), CountingDispatcher()
    return Admission({"compute": dispatcher}, ticks=ticks, ask_every_s=ask_every_s, clock=clock), clock, ticks, dispatcher


def envelope(jobs: int) -> JobEnvelope:
    return JobEnvelope(origin="compute", group="alice", jobs=[JobSpec(id=f"j{i}", number="6") for i in range(jobs)])


def test_a_burst_of_submits_dispatches_once_inline_and_asks_once_for_a_pass_a_second_later():
    a, clock, ticks, dispatcher = admission()
    for _ in range(50):  # 50 submits within 0.25 s
        a.request("compute")
        clock.now += 0.005
    assert dispatcher.passes == [1000.0]  # the first submit's pass
    [later] = ticks.sent  # the rest: one request, delayed, so the burst's last submit is admitted within a second
    assert later.delay_seconds == 1 and CLOCK_MESSAGES.validate_json(later.body) == AdmitRequest(admit="compute")


def test_a_request_comes_back_through_the_ticks_queue_as_a_pass():
    a, clock, ticks, dispatcher = admission()
    a.request("compute")
    a.request("compute")
    [later] = ticks.sent
    a.admit(AdmitRequest.model_validate_json(later.body).admit)
    assert len(dispatcher.passes) == 2


def test_a_steady_stream_of_submits_costs_one_pass_a_second_and_an_idle_process_dispatches_inline_again():
    a, clock, ticks, dispatcher = admission()
    a.request("compute")  # idle: inline
    a.request("compute")  # asks: a pass a second from now
    clock.now += 0.6
    a.request("compute")  # the asked-for pass is on its way, and comes after this submit: nothing more
    assert len(dispatcher.passes) == 1 and len(ticks.sent) == 1
    clock.now = 1001.2
    a.request("compute")  # that pass came 0.2 s ago: ask again rather than pass inline
    assert len(dispatcher.passes) == 1 and len(ticks.sent) == 2
    clock.now = 1002.8  # no pass made or asked for since 1002.2: inline again
    a.request("compute")
    a.request("compute")
    assert dispatcher.passes == [1000.0, 1002.8] and len(ticks.sent) == 3


def test_submits_on_many_threads_at_once_make_one_pass_and_one_ask():
    class SlowQueue(MemoryQueue):
        def send(self, messages):
            time.sleep(0.05)  # an SQS call: the other threads arrive while it is on its way
            super().send(messages)

    clock, ticks, dispatcher = Clock(), SlowQueue(), CountingDispatcher()
    a = Admission({"compute": dispatcher}, ticks=ticks, ask_every_s=0.5, clock=clock)
    a.request("compute")  # the interval's inline pass
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: a.request("compute"), range(16)))
    assert len(dispatcher.passes) == 1 and len(ticks.sent) == 1


def test_with_no_interval_every_submit_dispatches_inline():
    a, clock, ticks, dispatcher = admission(ask_every_s=0)
    for _ in range(5):
        a.request("compute")
    assert len(dispatcher.passes) == 5 and ticks.sent == []


def test_a_request_whose_send_fails_dispatches_inline_rather_than_strand_the_job():
    class Broken(MemoryQueue):
        def send(self, messages):
            raise RuntimeError("SQS is down")

    clock, dispatcher = Clock(), CountingDispatcher()
    a = Admission({"compute": dispatcher}, ticks=Broken(), ask_every_s=0.5, clock=clock)
    a.request("compute")
    a.request("compute")
    assert len(dispatcher.passes) == 2


def test_the_worker_refills_once_a_third_of_the_window_is_free_and_at_the_end_of_each_batch():
    a, clock, ticks, dispatcher = admission()  # a window of 100: refill at 33 freed
    for _ in range(3):
        a.after_settled(envelope(10))
    assert dispatcher.passes == []  # 30 freed: not yet
    a.after_settled(envelope(10))
    assert len(dispatcher.passes) == 1  # 40 freed: a pass, and the count starts again
    a.after_settled(envelope(10))
    a.after_batch()
    assert len(dispatcher.passes) == 2  # the batch's last 10 are refilled as it ends
    a.after_batch()
    assert len(dispatcher.passes) == 2  # nothing freed since: no pass


def test_a_worker_ending_many_batches_asks_for_what_is_left_as_a_submit_does():
    a, clock, ticks, dispatcher = admission()
    for _ in range(20):  # 20 small batches within 0.2 s, each settling one message
        a.after_settled(envelope(2))
        a.after_batch()
        clock.now += 0.01
    assert dispatcher.passes == [1000.0]  # the first batch's leftovers inline
    [later] = ticks.sent  # the rest in one pass a second later
    assert CLOCK_MESSAGES.validate_json(later.body) == AdmitRequest(admit="compute")


def test_origins_without_a_dispatcher_are_ignored():
    a, clock, ticks, dispatcher = admission()
    a.request("run")
    a.after_settled(JobEnvelope(origin="run", group="r1", jobs=[JobSpec(id="r1-1", number="6")]))
    a.after_batch()
    assert dispatcher.passes == [] and ticks.sent == []


def test_a_rate_limits_timer_passes_at_once_early_in_a_second_and_later_waits_for_the_next_seconds_start():
    a, clock, ticks, dispatcher = admission()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    a.sleep = sleep
    clock.now = 1000.1
    a.admit_early("compute")
    clock.now = 1001.6
    a.admit_early("compute")
    assert slept == [pytest.approx(0.401)] and dispatcher.passes == [1000.1, pytest.approx(1002.001)]


def test_the_ticks_queue_hands_a_timers_request_to_admit_early_and_a_throttled_submits_to_admit():
    class Asked:
        def __init__(self):
            self.calls: list[tuple[str, str]] = []

        def admit(self, origin):
            self.calls.append(("admit", origin))
            return 0

        def admit_early(self, origin):
            self.calls.append(("admit_early", origin))
            return 0

    asked = Asked()
    ticks = TicksClock(pacer=None, admission=asked, typed_jobs=None, ticks=None)
    ticks.on_message(AdmitRequest(admit="typed", early=True).model_dump_json(), 0.0)
    ticks.on_message(AdmitRequest(admit="compute").model_dump_json(), 0.0)
    assert asked.calls == [("admit_early", "typed"), ("admit", "compute")]
