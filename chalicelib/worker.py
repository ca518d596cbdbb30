"""The job worker: factor each job of a message, record results exactly once, retry failures.

A message (`JobEnvelope`) carries several jobs. Their outcomes are written in
one transaction with the run's counters, so a redelivered or duplicated
message changes nothing. A job that raises is retried on its own, in a new
message delayed by exponential backoff with full jitter; after its last
attempt it is recorded as `failed`. A message that cannot be parsed, or whose
outcomes cannot be stored, is reported as a batch item failure so SQS
redelivers it, and redrives it to the DLQ after maxReceiveCount.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Callable, Iterable

from pydantic import ValidationError

from chalicelib.models import JobEnvelope, JobOutcome, JobSpec, OutboundMessage
from chalicelib.ports import MessageQueue, ResultLedger

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0

    def delay_before(self, attempt: int, rng: Callable[[], float] = random.random) -> int:
        """Full jitter: uniform in [0, base * 2^(attempt-2)], capped, for the `attempt`th try."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** max(0, attempt - 2))
        return min(900, round(ceiling * rng()))


@dataclass
class Record:
    """The parts of an SQS record the worker reads."""

    message_id: str
    body: str


@dataclass
class JobWorker:
    ledger: ResultLedger
    retries: MessageQueue
    policy: RetryPolicy
    compute: Callable[[int], list[int]]
    worker_id: str

    def process(self, records: Iterable[Record], now: Callable[[], float]) -> list[str]:
        """Process a batch; return the message ids that must be redelivered."""
        failed_ids = []
        for record in records:
            try:
                envelope = JobEnvelope.model_validate_json(record.body)
            except ValidationError as exc:
                log.error("unparseable message %s left for the DLQ: %s", record.message_id, exc)
                failed_ids.append(record.message_id)
                continue
            try:
                self.process_envelope(envelope, now)
            except Exception:
                log.exception("message %s will be redelivered", record.message_id)
                failed_ids.append(record.message_id)
        return failed_ids

    def process_envelope(self, envelope: JobEnvelope, now: Callable[[], float]) -> int:
        outcomes: list[JobOutcome] = []
        retry: list[tuple[int, JobSpec]] = []
        for job in envelope.jobs:
            try:
                factors = self.compute(int(job.number))
            except Exception as exc:  # any failure of the job itself is retried, then recorded
                if job.attempt < self.policy.max_attempts:
                    next_job = job.model_copy(update={"attempt": job.attempt + 1})
                    retry.append((self.policy.delay_before(next_job.attempt), next_job))
                else:
                    outcomes.append(self._outcome(envelope, job, now(), error=f"{type(exc).__name__}: {exc}"))
                continue
            outcomes.append(self._outcome(envelope, job, now(), factors=[str(f) for f in factors]))
        if retry:
            self.retries.send(
                [
                    OutboundMessage(
                        body=JobEnvelope(run_id=envelope.run_id, jobs=[job]).model_dump_json(), delay_seconds=delay
                    )
                    for delay, job in retry
                ]
            )
        return self.ledger.record(outcomes, now()) if outcomes else 0

    def _outcome(self, envelope, job, finished_at, factors=None, error=None) -> JobOutcome:
        return JobOutcome(
            job_id=job.id,
            run_id=envelope.run_id,
            number=job.number,
            outcome="failed" if error else "done",
            factors=factors or [],
            error=error,
            attempt=job.attempt,
            worker=self.worker_id,
            finished_at=finished_at,
        )
