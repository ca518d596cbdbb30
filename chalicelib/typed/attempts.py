"""The worker's side of a typed job: starting an attempt, running its executor, handing a failed one back."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from chalicelib.core.errors import StaleWrite
from chalicelib.core.jobs import JobSpec
from chalicelib.typed.executors import Registry
from chalicelib.typed.store import TypedJobStore
from chalicelib.worker.runner import Begin, Done, Held, JobRunner


@dataclass
class TypedJobAttempts(JobRunner):
    """The worker's side of a typed job: a message's attempts start with one conditional write each, in one
    transaction, so a cancelled job is skipped, never run; then its type's executor runs each."""

    store: TypedJobStore
    registry: Registry
    latency_s: float = 0.0  # each attempt's simulated work (PACER_EXECUTOR_LATENCY_S)
    stale_after_s: float = 30.0  # a Lambda's timeout: a worker cannot still be running an attempt started this long ago

    def run(self, spec: JobSpec) -> Done:
        return Done(result=self.registry.run(spec.type or "", spec.payload or {}, self.latency_s))

    def begin(self, specs: Sequence[JobSpec], worker: str, now: float) -> list[Begin]:
        """A message's attempts start in one write; one that did not start is looked at on its own."""
        started = self.store.start_many([(spec.id, spec.attempt) for spec in specs], worker, now)
        return ["run" if spec.id in started else self._not_started(spec, worker, now) for spec in specs]

    def _not_started(self, spec: JobSpec, worker: str, now: float) -> Begin:
        job = self.store.get(spec.id)
        if job is None or job.status in ("cancelled", "completed", "failed"):
            return "skip"  # cancelled before it started, or a duplicate of a message already settled
        if job.status == "pending" and job.place == "admitted" and job.attempts == spec.attempt:
            return "resend"  # this attempt failed and was handed back, but its retry message may have been lost
        if job.status == "running" and job.attempts == spec.attempt:
            stale_at = (job.started_at or 0) + self.stale_after_s
            if stale_at >= now:  # take_over needs started_at strictly before now - stale_after_s
                return Held(retry_after_s=math.ceil(stale_at - now) + 1)
            try:  # redelivered because the worker that started it died, or could not store its outcome: take it over
                self.store.take_over(spec.id, spec.attempt, worker, now, now - self.stale_after_s)
                return "run"
            except StaleWrite:
                return "skip"
        return "skip"  # a stale message from before an admin retry, or an attempt already handed back

    def requeue(self, spec: JobSpec, worker: str, note: str, now: float) -> bool:
        """running -> pending until its retry message arrives. False: the attempt is no longer ours to hand back."""
        try:
            self.store.requeue(spec.id, spec.attempt, worker, note, now)
            return True
        except StaleWrite:
            return False
