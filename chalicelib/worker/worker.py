"""The job worker: run each job of a message, record results exactly once, retry failures.

The worker knows no origin: each message's origin names the runner that
begins, runs and hands back its jobs (worker/runner.py). A run's or a compute
request's job is a number to factor; a typed job runs its type's executor
after a conditional `pending -> running` (typed/attempts.py).

A message (`JobEnvelope`) carries several jobs. Their outcomes are written in
one transaction with the run's counters, so a redelivered or duplicated
message changes nothing. Quick messages of a batch are settled together
(group commit): the outcomes of messages run one after another wait to be
settled until `settle_within_s` has gone by since the first of them began,
then go in as few transactions as their groups fit, since a transaction's
call and shared counter writes cost the same for one job or fifty. So a slow
message settles alone, as soon as it has run; the batch's end, and a message
to be held for its second, settle what waits at once.

A job that raises is retried on its own, in a new message delayed by
exponential backoff with full jitter; after its last attempt it is recorded
as `failed`. A message that cannot be parsed, or whose
outcomes cannot be stored, is reported as a batch item failure so SQS
redelivers it, and redrives it to the DLQ after maxReceiveCount. Its reason is
logged for the DLQ view, and its visibility is shortened to a backoff (none
after its last receive) so it reaches the DLQ in about 15 s rather than after
five full visibility timeouts. A message that cannot be parsed gets no backoff
at all: its body will not parse on the next receive either, so waiting only
delays the DLQ. A rate-limited message may
come up to a second before its jobs' second (`not_before`): the worker works
the batch's other messages first, then holds it until that second starts.

Each job's lines carry its correlation id (observability/logs.py): the jobs a
message ran, a retry, a failure, and the ledger's record of the outcomes; the
metrics of the outcomes the ledger recorded, and of messages failed on their
last receive (which SQS then moves to the DLQ), are EMF lines
(observability/emf.py).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, TypeVar

from pydantic import ValidationError

from chalicelib.admission.limits import MAX_HOLD_S
from chalicelib.core.jobs import JobEnvelope, JobOutcome, JobSpec, Origin, OutboundMessage
from chalicelib.core.queue import MessageQueue
from chalicelib.dlq.store import FailureLog
from chalicelib.fleet.service import Heartbeat
from chalicelib.observability import emf
from chalicelib.observability.logs import correlated, log_jobs
from chalicelib.worker.ledger import ResultLedger, record_outcomes
from chalicelib.worker.retry import RetryPolicy
from chalicelib.worker.runner import Done, Held, JobRunner

log = logging.getLogger(__name__)


T = TypeVar("T")


def round_robin(items: list[T], key: Callable[[T], str]) -> list[T]:
    """`items` reordered to take one of each key in turn, keeping the order within a key."""
    turn: dict[str, int] = {}
    ranked: list[tuple[int, int, T]] = []
    for position, item in enumerate(items):
        k = key(item)
        turn[k] = turn.get(k, -1) + 1
        ranked.append((turn[k], position, item))
    return [item for _, _, item in sorted(ranked, key=lambda r: r[:2])]


@dataclass
class Record:
    """The parts of an SQS record the worker reads."""

    message_id: str
    body: str
    receipt_handle: str = ""
    receive_count: int = 1


@dataclass
class Ran:
    """A message whose jobs have run, waiting for its outcomes to be settled."""

    record: Record
    envelope: JobEnvelope
    started_at: float  # when its jobs began (after any hold for its second)
    outcomes: list[JobOutcome]
    # Jobs that are attempts another worker is running: the message comes back once they must have ended (the
    # jobs it could settle are settled).
    held: list[tuple[str, Held]]


@dataclass
class BatchResult:
    failed_ids: list[str]  # messages to redeliver
    jobs_done: int  # jobs given an outcome by this batch

    def response(self) -> dict[str, list[dict[str, str]]]:
        """Lambda's partial batch response: only the failed messages come back."""
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in self.failed_ids]}


@dataclass
class JobWorker:
    ledger: ResultLedger
    retries: MessageQueue  # the jobs queue: retried jobs go back here, and failed messages are held back
    policy: RetryPolicy
    runners: Mapping[Origin, JobRunner]
    worker_id: str
    failures: FailureLog | None = None
    heartbeat: Heartbeat | None = None  # told when the worker is busy, and how many jobs it settled
    settled: Callable[[JobEnvelope], None] | None = None  # told of each message whose outcomes are stored
    batch_done: Callable[[], None] | None = None  # told when a batch is over (admission refills what is left)
    max_receives: int | None = None  # the queue's maxReceiveCount: a message failed on that receive goes to the DLQ
    sleep: Callable[[float], None] = field(default=time.sleep)  # holds a message until its jobs' `not_before`
    settle_within_s: float = 0.05  # how long outcomes may wait to be settled with the next messages' (group commit)

    def process(self, records: Iterable[Record], now: Callable[[], float]) -> BatchResult:
        """Process a batch; report the messages that must be redelivered."""
        try:
            if self.heartbeat is None:
                return self._process(records, now)
            with self.heartbeat.busy() as done:
                result = self._process(records, now)
                done(result.jobs_done)
            return result
        finally:
            if self.batch_done is not None:
                self.batch_done()

    def _process(self, records: Iterable[Record], now: Callable[[], float]) -> BatchResult:
        """Messages are taken round robin across their groups (a run, or a caller), so a caller with one
        message in a batch of another's ten is served first, not last. `settled` is told of each message
        as soon as its outcomes are stored, so freed slots can be refilled while the rest of the batch is
        still being worked on."""
        failed: list[tuple[Record, str]] = []
        held: dict[str, int] = {}  # message id -> seconds until it may come back
        done = 0
        waiting: list[Ran] = []  # run, not yet settled (see the module on group commit)
        parsed: list[tuple[Record, JobEnvelope]] = []
        for record in records:
            try:
                parsed.append((record, JobEnvelope.model_validate_json(record.body)))
            except ValidationError as exc:
                log.error("unparseable message %s left for the DLQ: %s", record.message_id, exc)
                failed.append((record, f"unparseable message: {exc.errors()[0]['msg']}"))
        # A rate-limited message sent ahead of its second is held until then (admission/limits.py): the others first.
        ordered = sorted(round_robin(parsed, key=lambda pair: pair[1].group), key=lambda pair: pair[1].not_before or 0.0)
        for record, envelope in ordered:
            if envelope.not_before is not None and envelope.not_before > now():  # it will be held: settle first
                done += self._settle(waiting, now, failed, held)
            try:
                ran = self._run(record, envelope, now)
            except Exception as exc:
                log.exception("message %s will be redelivered", record.message_id)
                failed.append((record, f"{type(exc).__name__}: {exc}"))
                continue
            waiting.append(ran)
            if ran.held or now() - waiting[0].started_at >= self.settle_within_s:
                done += self._settle(waiting, now, failed, held)
        done += self._settle(waiting, now, failed, held)
        if failed:
            envelopes = {record.message_id: envelope for record, envelope in parsed}  # absent: unparseable
            self._note_failures(failed, held, envelopes, now())
            self._note_dead_letters(failed, envelopes)
        return BatchResult(failed_ids=[record.message_id for record, _ in failed], jobs_done=done)

    def _settle(self, waiting: list[Ran], now: Callable[[], float], failed: list[tuple[Record, str]],
                held: dict[str, int]) -> int:
        """Record the waiting messages' outcomes together, then tell `settled` of each message; empties `waiting`.
        If the outcomes cannot be stored, every waiting message is failed (redelivered). Returns the jobs
        recorded."""
        ran, waiting[:] = list(waiting), []
        if not ran:
            return 0
        try:
            recorded = record_outcomes(self.ledger, [o for message in ran for o in message.outcomes], now())
        except Exception as exc:
            log.exception("messages %s will be redelivered", ", ".join(m.record.message_id for m in ran))
            failed += [(message.record, f"{type(exc).__name__}: {exc}") for message in ran]
            return 0
        emf.outcomes_recorded(recorded)
        new = {id(outcome) for outcome in recorded}
        for message in ran:
            if not message.held:
                self._tell_settled(message.envelope)
                continue
            retry_after = max(h.retry_after_s for _, h in message.held)
            if any(id(outcome) in new for outcome in message.outcomes):
                self._tell_settled(message.envelope)  # the jobs it could settle freed their slots
            running = ", ".join(job_id for job_id, _ in message.held)
            failed.append((message.record, f"held back {retry_after} s: {running} running on another worker"))
            held[message.record.message_id] = retry_after
        return len(recorded)

    def _tell_settled(self, envelope: JobEnvelope) -> None:
        if self.settled is not None:
            self.settled(envelope)

    def _note_failures(self, failed: list[tuple[Record, str]], held: dict[str, int],
                       envelopes: dict[str, JobEnvelope], now: float) -> None:
        # Both are best effort: without them the message still comes back, only later and unexplained.
        try:
            if self.failures is not None:
                self.failures.record([(r.message_id, r.receive_count, reason) for r, reason in failed], now)
            self.retries.delay_redelivery(
                [(r.receipt_handle, held.get(r.message_id) or self._backoff(r, r.message_id not in envelopes))
                 for r, _ in failed if r.receipt_handle]
            )
        except Exception:
            log.exception("could not note %d failed message(s)", len(failed))

    def _backoff(self, record: Record, unparseable: bool) -> int:
        """How long a failed message stays out of sight: backoff before its next receive; none after its last (SQS
        moves it to the DLQ when it would be received again, so waiting out a backoff only delays that), nor for
        a message that cannot be parsed (it never will be)."""
        if unparseable or self._last_receive(record):
            return 0
        return self.policy.delay_before(record.receive_count + 1)

    def _last_receive(self, record: Record) -> bool:
        return self.max_receives is not None and record.receive_count >= self.max_receives

    def _note_dead_letters(self, failed: list[tuple[Record, str]], envelopes: dict[str, JobEnvelope]) -> None:
        last = [(record, reason) for record, reason in failed if self._last_receive(record)]
        for record, reason in last:
            envelope = envelopes.get(record.message_id)
            facts = {"message_id": record.message_id, "receive_count": record.receive_count, "reason": reason}
            if envelope is None:  # unparseable: no jobs to name
                log.error("message failed on its last receive: SQS moves it to the DLQ", extra=facts)
            else:
                log_jobs(log, "message failed on its last receive: SQS moves it to the DLQ",
                         ((job.correlation_id, job.id) for job in envelope.jobs), logging.ERROR, **facts)
        emf.dead_lettered(len(last))

    def _run(self, record: Record, envelope: JobEnvelope, now: Callable[[], float]) -> Ran:
        """Begin and run the message's jobs, and send their retries; their outcomes are for `_settle`."""
        runner = self.runners[envelope.origin]
        outcomes: list[JobOutcome] = []
        retry: list[tuple[int, JobSpec]] = []
        held: list[tuple[str, Held]] = []
        ran: list[JobSpec] = []
        hold = 0.0 if envelope.not_before is None else min(MAX_HOLD_S, envelope.not_before - now())
        if hold > 0:
            self.sleep(hold)
        # Every job of the message starts at the moment its start is recorded (a typed job's record says so), so a
        # job's queue wait is one figure wherever it is read; its wait behind its siblings counts as running.
        started_at = now()
        for job, begun in zip(envelope.jobs, runner.begin(envelope.jobs, self.worker_id, started_at), strict=True):
            next_job = job.model_copy(update={"attempt": job.attempt + 1})
            if begun == "resend":  # handed back for a retry whose message may be lost: send it (again)
                retry.append((self.policy.delay_before(next_job.attempt), next_job))
            if isinstance(begun, Held):
                held.append((job.id, begun))
            if begun != "run":
                continue
            ran.append(job)
            try:
                done = runner.run(job)
            except Exception as exc:  # any failure of the job itself is retried, then recorded
                permanent = getattr(exc, "permanent", False)  # say, a factorisation over its budget: it would fail again
                reason = str(exc) if permanent else f"{type(exc).__name__}: {exc}"
                with correlated(job.correlation_id):
                    if job.attempt < self.policy.max_attempts and not permanent:
                        delay = self.policy.delay_before(next_job.attempt)
                        if runner.requeue(job, self.worker_id, f"retry in {delay} s: {reason}", now()):
                            retry.append((delay, next_job))
                            log.warning("job attempt failed; retried", extra={
                                "job_id": job.id, "attempt": job.attempt, "retry_in_s": delay, "reason": reason})
                    else:
                        log.warning("job failed", extra={"job_id": job.id, "attempt": job.attempt, "reason": reason})
                        outcomes.append(self._outcome(envelope, job, started_at, now(), error=reason))
                continue
            outcomes.append(self._outcome(envelope, job, started_at, now(), done=done))
        log_jobs(log, "jobs run", ((job.correlation_id, job.id) for job in ran), origin=envelope.origin,
                 group=envelope.group)
        if retry:
            self.retries.send(
                [
                    OutboundMessage(
                        body=JobEnvelope(origin=envelope.origin, group=envelope.group, jobs=[job],
                                         admitted_at=envelope.admitted_at).model_dump_json(),
                        delay_seconds=delay, group_id=envelope.group if envelope.origin != "run" else None,
                    )
                    for delay, job in retry
                ]
            )
        return Ran(record, envelope, started_at, outcomes, held)

    def _outcome(self, envelope: JobEnvelope, job: JobSpec, started_at: float, finished_at: float,
                 done: Done | None = None, error: str | None = None) -> JobOutcome:
        return JobOutcome(
            job_id=job.id,
            group=envelope.group,
            origin=envelope.origin,
            submitted_at=job.submitted_at,
            started_at=started_at,
            admitted_at=envelope.admitted_at,
            type=job.type,
            number=job.number,
            outcome="failed" if error else "done",
            factors=done.factors if done else [],
            result=done.result if done else None,
            error=error,
            attempt=job.attempt,
            worker=self.worker_id,
            finished_at=finished_at,
            correlation_id=job.correlation_id,
        )
