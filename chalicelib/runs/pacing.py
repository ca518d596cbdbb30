"""Rate pacing: which jobs a run owes, and the self-rescheduling tick that emits them.

EventBridge fires at most once a minute, far too coarse to pace 10 jobs a
second. The fine clock is a chain of SQS messages (`Tick`), each re-sending the
next with `DelaySeconds`. The one-minute schedule is only the watchdog that
restarts a chain that died.

Exactly one tick may advance a run: the one whose token the run stores. A tick
hands the clock to its successor in the same conditional write that claims
the jobs, then sends the successor. A duplicate tick loses the condition and
does nothing, so chains never multiply. A crash between the write and the send
loses the successor; the watchdog notices the silent run and starts a new
chain (the jobs themselves are safe in the outbox).

Ticks come every second whatever the rate, so a rate change needs no tick of
its own: it re-anchors the schedule and the next tick, at most a second
later, plans with it.
"""
from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from chalicelib.core.errors import StaleWrite
from chalicelib.core.jobs import SQS_MAX_DELAY_S, JobEnvelope, JobSpec, OutboundMessage
from chalicelib.core.queue import MessageQueue
from chalicelib.observability import emf
from chalicelib.observability.logs import log_jobs
from chalicelib.runs.models import Run, Tick
from chalicelib.runs.store import RunStore

log = logging.getLogger(__name__)

JOB_NUMBER_MODULUS = 10**12  # 12-digit numbers: a few hundred microseconds each to factor


@dataclass(frozen=True)
class PaceSettings:
    lookahead_s: float = 1.0  # claim jobs due this far ahead; bounds how late a rate change bites
    max_in_flight: int = 2000  # jobs enqueued but not settled: keeps SQS shallow
    jobs_per_message: int = 50  # ≤ 98 so one message's results fit one transaction
    tick_interval_s: int = 1  # also bounds how late a rate change or a stop bites
    abandoned_slice_s: float = 10.0  # a claimed slice unsent this long was dropped by a crash
    stale_chain_s: float = 10.0  # the watchdog restarts a chain silent this long


class Timed(NamedTuple):
    delay: int  # seconds, as SQS DelaySeconds
    envelope: JobEnvelope

    def message(self) -> OutboundMessage:
        return OutboundMessage(body=self.envelope.model_dump_json(), delay_seconds=self.delay)


@dataclass(frozen=True)
class TickPlan:
    start: int
    end: int
    messages: list[Timed] = field(default_factory=list)
    next_tick_delay: int | None = None  # None: the chain ends

    @property
    def claimed(self) -> int:
        return self.end - self.start


def job_id(run_id: str, index: int) -> str:
    return f"{run_id}:{index:08d}"


def job_number(run_id: str, index: int) -> str:
    """The number job `index` factors: pseudo-random, but the same on every retry and resend."""
    digest = hashlib.blake2b(f"{run_id}:{index}".encode(), digest_size=8).digest()
    return str(int.from_bytes(digest, "big") % JOB_NUMBER_MODULUS + 2)


def due_time(run: Run, index: int) -> float:
    return run.anchor_at + (index - run.anchor_index) / run.rate_per_second


def due_count(run: Run, at: float) -> int:
    """How many jobs of the run are due by `at` (job i is due at due_time(i))."""
    if at < run.anchor_at:
        return run.anchor_index
    # The epsilon keeps 0.3 s * 10/s from flooring to 2.
    count = run.anchor_index + math.floor((at - run.anchor_at) * run.rate_per_second + 1e-9) + 1
    return min(count, run.total) if run.total is not None else count


def envelopes_for(run: Run, start: int, end: int, now: float, jobs_per_message: int) -> list[Timed]:
    """Pack jobs [start, end) into messages, one group per second of delay, so they arrive evenly."""
    groups: dict[int, list[JobSpec]] = {}
    for index in range(start, end):
        delay = min(SQS_MAX_DELAY_S, max(0, math.floor(due_time(run, index) - now)))
        # A paced job is "submitted" when it falls due: its queue wait is measured from then.
        groups.setdefault(delay, []).append(JobSpec(id=job_id(run.run_id, index), number=job_number(run.run_id, index),
                                                    submitted_at=round(due_time(run, index), 3),
                                                    correlation_id=run.correlation_id))
    return [
        Timed(delay, JobEnvelope(group=run.run_id, jobs=jobs[offset : offset + jobs_per_message]))
        for delay, jobs in sorted(groups.items())
        for offset in range(0, len(jobs), jobs_per_message)
    ]


def plan_tick(run: Run, now: float, pace: PaceSettings) -> TickPlan:
    """What one tick at `now` should claim and send, and when the next tick should come."""
    start = run.enqueued
    if run.state != "running" or run.fully_enqueued:
        return TickPlan(start=start, end=start)
    due = due_count(run, now + pace.lookahead_s)
    free = max(0, pace.max_in_flight - (run.enqueued - run.settled))
    end = max(start, min(due, start + free))
    messages = envelopes_for(run, start, end, now, pace.jobs_per_message)
    next_delay = None if run.total is not None and end >= run.total else pace.tick_interval_s
    return TickPlan(start=start, end=end, messages=messages, next_tick_delay=next_delay)


@dataclass
class Pacer:
    """The scheduler's services: one tick, the watchdog, and starting a chain."""

    runs: RunStore
    jobs: MessageQueue
    ticks: MessageQueue
    pace: PaceSettings
    new_token: Callable[[], str]

    def handle_tick(self, tick: Tick, now: float) -> str:
        run = self.runs.get(tick.run_id)
        if run is None or not run.tick_token or run.tick_token != tick.token:
            return "stale"  # a duplicate, or a tick from before a rate change or stop
        self.resend_abandoned_slices(run, now)
        plan = plan_tick(run, now, self.pace)
        next_token = self.new_token() if plan.next_tick_delay is not None else ""
        try:
            self.runs.advance(run, end=plan.end, next_token=next_token, now=now)
        except StaleWrite:
            return "lost race"  # another copy of this tick, a rate change or a stop got there first
        # Admitted: the claim is the one write that moves these jobs into the window (the sends may be retried).
        log_jobs(log, "jobs admitted", ((job.correlation_id, job.id) for timed in plan.messages
                                        for job in timed.envelope.jobs), origin="run", group=run.run_id)
        emf.jobs_admitted("run", plan.claimed)
        if plan.next_tick_delay is not None:
            self.send_tick(Tick(run_id=run.run_id, token=next_token), plan.next_tick_delay)
        if plan.messages:
            self.jobs.send([timed.message() for timed in plan.messages])
            self.runs.forget_slice(run.run_id, plan.start)
        return f"claimed {plan.claimed}"

    def resend_abandoned_slices(self, run: Run, now: float) -> int:
        """Send again the slices a crashed tick claimed but never sent. Workers drop duplicates."""
        resent = 0
        for piece in self.runs.slices(run.run_id):
            if now - piece.created_at < self.pace.abandoned_slice_s:
                continue  # probably still being sent by a live tick
            late = envelopes_for(run, piece.start, piece.end, now, self.pace.jobs_per_message)
            self.jobs.send([timed._replace(delay=0).message() for timed in late])
            self.runs.forget_slice(run.run_id, piece.start)
            resent += piece.end - piece.start
        return resent

    def send_tick(self, tick: Tick, delay: int = 0) -> None:
        self.ticks.send([OutboundMessage(body=tick.model_dump_json(), delay_seconds=delay)])

    def watchdog(self, now: float) -> str:
        """Run by the one-minute schedule: recover lost slices and restart a chain that died."""
        run = self.runs.current()
        if run is None:
            return "no run"
        resent = self.resend_abandoned_slices(run, now)
        if run.state != "running" or run.fully_enqueued or now - run.tick_at < self.pace.stale_chain_s:
            return f"healthy, resent {resent}"
        token = self.new_token()
        try:
            self.runs.replace_token(run, next_token=token, now=now)
        except StaleWrite:
            return "chain moved meanwhile"
        self.send_tick(Tick(run_id=run.run_id, token=token))
        return f"restarted chain, resent {resent}"
