"""Typed jobs: submit, list, read, cancel, retry, stats, and the wake-ups of scheduled jobs.

A typed job is one item in the typed-jobs table. It waits in the schedule
(until `scheduled_for`) or in its caller's backlog (highest priority first,
then oldest), both in DynamoDB; the shared dispatcher (admission/dispatcher.py,
`origin="typed"`) admits it to the one jobs queue within a bounded in-flight
window, round robin across callers; the one worker starts it with a
conditional `pending -> running` (typed/attempts.py), runs its type's executor,
and records the outcome through the result ledger, which settles the job in
the same transaction. Every status change appends to the job's timeline in the
write that makes it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
from dataclasses import dataclass
from typing import AbstractSet, Any

from pydantic import BaseModel, ValidationError

from chalicelib.admission.models import RateLimit, RateLimits, SetLimit, caller_limit, type_limit
from chalicelib.admission.service import Admission
from chalicelib.core.errors import Conflict, DuplicateRequest, NotFound, StaleWrite
from chalicelib.core.jobs import SQS_MAX_DELAY_S, OutboundMessage
from chalicelib.core.queue import MessageQueue
from chalicelib.core.times import iso
from chalicelib.core.validation import check_caller, field_errors, invalid
from chalicelib.observability.logs import current_correlation_id
from chalicelib.typed.executors import Registry
from chalicelib.typed.listing import JOB_ID, decode_token, encode_token, index_keys, parse_list_query, plan_list
from chalicelib.typed.models import (
    TYPED_JOB_STATUSES,
    DispatchState,
    JobList,
    JobSummary,
    JobView,
    StatsView,
    ThroughputMinute,
    TimelineEntry,
    TimelineView,
    JobTarget,
    PopulateJobs,
    TypedJob,
    WakeUp,
)
from chalicelib.typed.store import TypedJobStore

log = logging.getLogger(__name__)
DEFAULT_CALLER = "anonymous"

MAX_IDEMPOTENCY_KEY = 200

THROUGHPUT_MINUTES = 60

WAKE_UP_HORIZON_S = 75  # the watchdog runs each minute: it covers what falls due until just after its next run
# The scheduled jobs one wake-up moves (promote_due): a transaction each, well inside pace_tick's 10 s timeout.
PROMOTE_PAGE = 100


def new_job_id() -> str:
    return "j-" + secrets.token_hex(8)


# Any: the request models are built at run time from the registry (Registry.new_job_adapter).
def parse_new_job(data: dict[str, Any], registry: Registry) -> Any:
    try:
        return registry.new_job_adapter().validate_python(data)
    except ValidationError as exc:
        raise invalid(field_errors(exc, registry.names)) from exc


def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise invalid([{"field": "Idempotency-Key",
                        "message": f"must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters"}])
    return key


def summary(job: TypedJob) -> JobSummary:
    return JobSummary(
        id=job.id, type=job.type, priority=job.priority, status=job.status, payload=job.payload, caller=job.caller,
        created_at=iso(job.created_at), scheduled_for=iso(job.scheduled_for), started_at=iso(job.started_at),
        finished_at=iso(job.finished_at), attempts=job.attempts, max_attempts=job.max_attempts, result=job.result,
        error=job.error, target=job.target, bot=job.bot,
    )


def view(job: TypedJob) -> dict[str, Any]:
    """A job as the API answers it, with its timeline (`summary` is the listing's shorter form)."""
    return JobView(**summary(job).model_dump(), timeline=[
        TimelineView(status=e.status, at=iso(e.at), worker=e.worker, attempt=e.attempt, note=e.note)
        for e in job.timeline]).model_dump()


def body_hash(command: BaseModel) -> str:
    canonical = json.dumps(command.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def default_target(job_type: str, bot_job_types: AbstractSet[str]) -> JobTarget:
    """Where a job runs when its submit names no target: on bots for the stage's bot job types, else on Lambda."""
    return "bot" if job_type in bot_job_types else "lambda"


def submit(store: TypedJobStore, registry: Registry, admission: Admission, ticks: MessageQueue, data: dict[str, Any],
           caller: str | None, idempotency_key: str | None, max_attempts: int, now: float,
           bot_job_types: AbstractSet[str] = frozenset()) -> tuple[TypedJob, bool]:
    """Validate, then store the job (with its idempotency claim, in one transaction), then admit it, or for a
    scheduled job ask for a wake-up when it falls due. Returns (job, created)."""
    job, created = _create(store, registry, data, caller, idempotency_key, max_attempts, now, bot_job_types)
    log.info("typed job stored" if created else "typed job found by its Idempotency-Key",
             extra={"job_id": job.id, "type": job.type, "caller": job.caller, "place": job.place})
    if created and job.place == "scheduled":
        _wake_up_when_due(ticks, job.scheduled_for or now, now)
    elif created and job.target == "lambda":  # a bot job waits for a bot's claim: admission never sees it
        admission.request("typed")
    return job, created


def _create(store: TypedJobStore, registry: Registry, data: dict[str, Any], caller: str | None,
            idempotency_key: str | None, max_attempts: int, now: float,
            bot_job_types: AbstractSet[str]) -> tuple[TypedJob, bool]:
    command = parse_new_job(data, registry)
    if command.target is None:
        # Resolved before the body is hashed: a retry under the same Idempotency-Key matches the job as stored.
        command = command.model_copy(update={"target": default_target(command.type, bot_job_types)})
    caller = check_caller(caller or DEFAULT_CALLER)
    key = check_idempotency_key(idempotency_key)
    due = command.scheduled_for.timestamp() if command.scheduled_for else None
    waits = due is not None and due > now
    job_id = new_job_id()
    payload = command.payload.model_dump(mode="json", by_alias=True)
    job = TypedJob(
        id=job_id, type=command.type, priority=command.priority, status="pending",
        place="scheduled" if waits else "queued", payload=payload, caller=caller, created_at=now,
        scheduled_for=due, max_attempts=max_attempts, correlation_id=current_correlation_id(), target=command.target,
        timeline=[TimelineEntry(status="pending", at=now, attempt=0,
                                note=f"created; scheduled for {iso(due)}" if waits else "created")],
    )
    claim = (caller, key, body_hash(command)) if key else None
    try:
        return store.create(job, registry.main_text(job.type, payload), claim, now), True
    except DuplicateRequest as duplicate:
        assert claim is not None  # the store raises DuplicateRequest only for a claim it was given
        if duplicate.body_hash != claim[2]:
            raise Conflict(f"Idempotency-Key {key!r} was used for job {duplicate.job_id} with a different body") from None
        existing = store.get(duplicate.job_id)
        if existing is None:  # the claim outlived its job: cannot happen unless someone deleted the job
            raise Conflict(f"Idempotency-Key {key!r} names job {duplicate.job_id}, which no longer exists") from None
        return existing, False


POPULATE_CALLER = "populate"  # who a populated job is from, unless the request names a caller
# The populate schedule looks every minute: a turn taken this much before it is due is taken on time, so a fire a
# little early (the schedule's jitter) does not put the batch a whole minute late.
POPULATE_EARLY_S = 30.0


@dataclass(frozen=True)
class PopulateDefaults:
    """A stage's populate settings: the batch a request or the schedule makes when it names nothing else."""

    count: int
    type: str | None
    bot_job_types: AbstractSet[str]
    max_attempts: int


def populate(store: TypedJobStore, registry: Registry, admission: Admission, command: PopulateJobs,
             caller: str | None, defaults: PopulateDefaults, now: float) -> list[TypedJob]:
    """Seed 004's steady supply: a batch of typed jobs made from their types' example payloads, each stored as a
    submit stores it, then one admission pass for those that run on Lambda. Everything is checked before the
    first job is stored, so a refused request stores nothing."""
    types = _populate_types(registry, command.type or defaults.type, "type" if command.type else "PACER_POPULATE_TYPE")
    caller = check_caller(caller or POPULATE_CALLER)
    count = command.count or defaults.count
    batch = f"(populated {iso(now)}, {{}} of {count})"
    jobs = []
    for index in range(count):
        job_type = types[index % len(types)]
        data = {"type": job_type, "priority": command.priority, "target": command.target,
                "payload": registry.example(job_type, batch.format(index + 1))}
        jobs.append(_create(store, registry, data, caller, None, defaults.max_attempts, now,
                            defaults.bot_job_types)[0])
    log.info("typed jobs populated", extra={"count": len(jobs), "caller": caller,
                                            "job_ids": [job.id for job in jobs]})
    if any(job.target == "lambda" for job in jobs):
        admission.request("typed")
    return jobs


def _populate_types(registry: Registry, job_type: str | None, field: str) -> list[str]:
    """The types a batch cycles through: the one named, or every type that registered an example payload."""
    makeable = [name for name in registry.names if registry.example(name, "") is not None]
    if job_type is None:
        return makeable
    if job_type not in makeable:
        raise invalid([{"field": field, "message": f"{job_type!r} is not a job type populate can make; "
                                                   f"known: {', '.join(makeable)}"}])
    return [job_type]


def populate_when_due(store: TypedJobStore, registry: Registry, admission: Admission, interval_s: float | None,
                      defaults: PopulateDefaults, now: float) -> list[TypedJob]:
    """Run by the populate schedule each minute: a batch once per `interval_s` (None: never), whichever
    invocation takes the turn."""
    if interval_s is None or not store.take_populate_turn(now, now + interval_s - POPULATE_EARLY_S):
        return []
    return populate(store, registry, admission, PopulateJobs(), None, defaults, now)


def wake_up(due: float, now: float) -> OutboundMessage:
    """A ticks-queue message that comes back when `due` comes, so admission runs then and not at the next
    watchdog, up to a minute later."""
    delay = min(SQS_MAX_DELAY_S, max(0, math.ceil(due - now)))
    return OutboundMessage(body=WakeUp(due=due).model_dump_json(), delay_seconds=delay)


def _wake_up_when_due(ticks: MessageQueue, due: float, now: float) -> None:
    """Best effort: without the wake-up, the watchdog admits the job up to a minute after it is due."""
    try:
        wake_up_when_due(ticks, due, now)
    except Exception:
        log.exception("could not schedule a wake-up for %s; the watchdog admits the job", due)


def on_wake_up(message: WakeUp, store: TypedJobStore, ticks: MessageQueue, admission: Admission, now: float) -> str:
    """A wake-up came back from the ticks queue: move what fell due into the backlogs and admit it, or wait the
    rest if it came early."""
    if message.due > now:
        _wake_up_when_due(ticks, message.due, now)
        return "early"
    promote_due(store, ticks, now)
    return f"admitted {admission.admit('typed')}"


def promote_due(store: TypedJobStore, ticks: MessageQueue, now: float) -> int:
    """Move up to PROMOTE_PAGE scheduled jobs that fell due into their callers' backlogs; if there may be more, a
    wake-up at once takes them. Returns the jobs found due.

    Only wake-ups and the watchdog promote, not each admission pass: every scheduled job has its wake-up (or the
    watchdog's, beyond SQS's longest delay), and a pass that read the schedule cost a Query, due or not."""
    found = store.promote_due(now, PROMOTE_PAGE)
    if found == PROMOTE_PAGE:
        _wake_up_when_due(ticks, now, now)
    return found


def wake_up_when_due(ticks: MessageQueue, due: float, now: float) -> None:
    """For a job just scheduled: SQS can delay a message 15 minutes at most, so a later job waits for the
    watchdog's `wake_ups_due_soon`."""
    if due - now <= SQS_MAX_DELAY_S:
        ticks.send([wake_up(due, now)])


def wake_ups_due_soon(store: TypedJobStore, ticks: MessageQueue, now: float) -> int:
    """Run by the watchdog: one wake-up for each second in which scheduled jobs fall due before it runs again."""
    seconds = sorted({math.ceil(due) for due in store.due_by(now + WAKE_UP_HORIZON_S, 100) if due > now})
    ticks.send([wake_up(second, now) for second in seconds])
    return len(seconds)


def get(store: TypedJobStore, job_id: str) -> TypedJob:
    job = store.get(job_id) if JOB_ID.match(job_id) else None
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def list_jobs(store: TypedJobStore, registry: Registry, params: dict[str, str]) -> dict[str, Any]:
    query = parse_list_query(params, registry)
    plan = plan_list(query)
    start = decode_token(plan, query.next) if query.next else None
    jobs, more = store.list(plan, start, query.limit)
    return JobList(jobs=[summary(job) for job in jobs],
                   next=encode_token(plan, index_keys(plan, jobs[-1])) if more and jobs else None).model_dump()


def cancel(store: TypedJobStore, admission: Admission, job_id: str, now: float) -> TypedJob:
    """pending -> cancelled, and out of wherever it waits; an admitted job's slot goes to the next. 409 once it runs
    or has finished."""
    job = _cancel(store, job_id, now)
    if job.target == "lambda":  # a bot job's claim needs no admission pass
        admission.request("typed")
    return job


def _cancel(store: TypedJobStore, job_id: str, now: float) -> TypedJob:
    for _ in range(10):
        job = get(store, job_id)
        if job.status != "pending":
            raise Conflict(f"job {job_id} is {job.status}: only a pending job can be cancelled")
        try:
            store.cancel(job, now)
            return get(store, job_id)
        except StaleWrite:
            continue  # admitted, promoted or started since we read it: look again
    raise Conflict(f"job {job_id} kept changing; try again")


def retry(store: TypedJobStore, admission: Admission, job_id: str, now: float) -> TypedJob:
    """An admin's second chance for a failed job: pending again, attempts from 1, back in its caller's backlog."""
    job = get(store, job_id)
    if job.status != "failed":
        raise Conflict(f"job {job_id} is {job.status}: only a failed job can be retried")
    try:
        store.retry(job, now)
    except StaleWrite as exc:
        raise Conflict(f"job {job_id} changed while it was being retried") from exc
    if job.target == "lambda":
        admission.request("typed")
    return get(store, job_id)


def stats(store: TypedJobStore, registry: Registry, now: float) -> dict[str, Any]:
    current = int(now) // 60 * 60
    since = current - (THROUGHPUT_MINUTES - 1) * 60
    counts = store.stats(since, current)
    by_type = {name: 0 for name in registry.names}
    by_type.update({name: count for name, count in counts.by_type.items() if count or name in by_type})
    return StatsView(
        total=counts.total,
        by_status={status: max(0, counts.by_status.get(status, 0)) for status in TYPED_JOB_STATUSES},
        by_type=by_type,
        throughput=[
            ThroughputMinute(minute=iso(minute).replace(".000Z", "Z"), completed=counts.minutes.get(minute, (0, 0))[0],
                             failed=counts.minutes.get(minute, (0, 0))[1])
            for minute in range(since, current + 1, 60)
        ],
    ).model_dump()


def set_paused(store: TypedJobStore, admission: Admission, paused: bool, now: float) -> dict[str, Any]:
    """Pause or resume typed jobs' admission (jobs already admitted still run); resuming admits at once."""
    store.set_paused(paused, now)
    if not paused:
        admission.admit("typed")
    return dispatch_state(store)


def dispatch_state(store: TypedJobStore) -> dict[str, Any]:
    callers = store.callers()
    return DispatchState(paused=store.paused(), backlog=sum(c.backlog for c in callers),
                         in_flight=sum(c.in_flight for c in callers)).model_dump()


def rate_limits(store: TypedJobStore) -> dict[str, Any]:
    """The rate limits on typed jobs in force, by type and by caller."""
    found = [_rate_limit(key, per_minute) for key, per_minute in sorted(store.limits().items())]
    return RateLimits(limits=[limit for limit in found if limit is not None]).model_dump()


def set_rate_limit(store: TypedJobStore, registry: Registry, command: SetLimit, now: float) -> dict[str, Any]:
    """Limit (or, with per_minute null, free) a type's or a caller's typed jobs; the next admission pass, at most a
    second or so later, keeps to it (admission/limits.py)."""
    if command.type is not None:
        if command.type not in registry:
            raise invalid([{"field": "type", "message": f"unknown job type {command.type!r}; known: "
                                                        f"{', '.join(registry.names)}"}])
        key = type_limit(command.type)
    else:
        key = caller_limit(check_caller(command.caller))  # SetLimit checked it as an X-Caller-ID already
    store.set_limit(key, command.per_minute, now)
    return RateLimit(type=command.type, caller=command.caller, per_minute=command.per_minute).model_dump()


def _rate_limit(key: str, per_minute: float) -> RateLimit | None:
    kind, _, name = key.partition(":")
    if kind == "type":
        return RateLimit(type=name, per_minute=per_minute)
    if kind == "caller":
        return RateLimit(caller=name, per_minute=per_minute)
    return None
