"""Typed jobs (issue #6): submit, list, read, cancel, retry, stats; and each attempt's start for the worker.

A typed job is one item in the tasks table. It waits in the schedule (until
`scheduled_for`) or in its caller's backlog (highest priority first, then
oldest), both in DynamoDB; the dispatcher (`compute.Dispatcher` with
`origin="task"`) admits it to the one jobs queue within a bounded in-flight
window, round robin across callers; the one `JobWorker` starts it with a
conditional `pending -> running`, runs its type's executor, and records the
outcome through the result ledger, which settles the job in the same
transaction. Every status change appends to the job's timeline in the write
that makes it.

Listing plans one DynamoDB Query on a GSI (`plan_list`): the index is chosen
by the status or type filter (else the constant "all" partition) and the
sort; the other filters are key conditions where the index allows and
FilterExpressions otherwise. The `next` token is the last returned job's
index keys, base64url JSON, checked against the query it continues.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from chalicelib.compute import check_caller
from chalicelib.errors import Conflict, DuplicateRequest, InvalidInput, NotFound, StaleWrite
from chalicelib.executors import Registry
from chalicelib.models import (SQS_MAX_DELAY_S, TASK_STATUSES, JobSpec, OutboundMessage, TaskBacklogItem, TaskJob,
                               TaskStatus, TimelineEntry, WakeUp)
from chalicelib.ports import MessageQueue, TaskStore
from chalicelib.resources import TASK_INDEX_PARTITIONS, TASK_INDEX_SORTS, task_index_name

JOB_ID = re.compile(r"^j-[0-9a-f]{16}$")
DEFAULT_CALLER = "anonymous"
MAX_IDEMPOTENCY_KEY = 200
MAX_TOKEN = 2000
THROUGHPUT_MINUTES = 60
WAKE_UP_HORIZON_S = 75  # the watchdog runs each minute: it covers what falls due until just after its next run


def new_job_id() -> str:
    return "j-" + secrets.token_hex(8)


def iso_key(moment: float) -> str:
    """A sortable fixed-width UTC time with microseconds: 2026-11-23T12:00:00.123456Z."""
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso(moment: float | None) -> str | None:
    """The API's times: ISO 8601 UTC with milliseconds."""
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---- keys: the order of each list, derived from a job and never changed after it is created ----

def created_key(job_id: str, created_at: float) -> str:
    return f"{iso_key(created_at)}#{job_id}"


def priority_key(job_id: str, priority: int, created_at: float) -> str:
    return f"{priority}#{iso_key(created_at)}#{job_id}"


def backlog_key(item: TaskBacklogItem) -> str:
    """A caller's backlog in ascending key order: priority 5 first, then the oldest."""
    return f"{9 - item.priority}#{iso_key(item.created_at)}#{item.id}"


def schedule_key(item: TaskBacklogItem) -> str:
    return f"{iso_key(item.due or 0)}#{item.id}"


def search_text(job_id: str, main_text: str) -> str:
    return f"{job_id} {main_text}".lower()


def listing_attributes(job: TaskJob, main_text: str) -> dict[str, Any]:
    """The attributes the GSIs key on and `q` filters on, besides `status` and `type`."""
    return {"kind": "job", "created_key": created_key(job.id, job.created_at),
            "priority_key": priority_key(job.id, job.priority, job.created_at), "search": search_text(job.id, main_text)}


def backlog_item(job: TaskJob) -> TaskBacklogItem:
    return TaskBacklogItem(id=job.id, type=job.type, priority=job.priority, payload=job.payload, caller=job.caller,
                           created_at=job.created_at, due=job.scheduled_for if job.place == "scheduled" else None)


def task_job_spec(item: TaskBacklogItem) -> JobSpec:
    """What the dispatcher sends for a backlog item: the job's first attempt."""
    return JobSpec(id=item.id, type=item.type, payload=item.payload, submitted_at=item.created_at)


# ---- input ----

def field_errors(exc: ValidationError, union_tags: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """pydantic's errors as `{field, message}`, without the union tag pydantic puts first in a variant's paths."""
    fields = []
    for error in exc.errors():
        loc = list(error["loc"])
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            fields.append({"field": "type", "message": f"must be one of: {', '.join(union_tags)}"})
            continue
        if loc and loc[0] in union_tags:
            loc = loc[1:]
        message = error["msg"].removeprefix("Value error, ")
        fields.append({"field": ".".join(map(str, loc)) or "body", "message": message})
    return fields


def invalid(fields: list[dict[str, str]]) -> InvalidInput:
    return InvalidInput("; ".join(f"{f['field']}: {f['message']}" for f in fields), fields)


def parse_new_job(data: dict, registry: Registry):
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


class ListQuery(BaseModel):
    """`GET /api/jobs` query parameters. Lax: query strings are strings, so "3" is the priority 3."""

    model_config = ConfigDict(extra="forbid")

    status: TaskStatus | None = None
    type: str | None = None
    priority: int | None = Field(default=None, ge=1, le=5)
    created_from: AwareDatetime | None = None
    created_to: AwareDatetime | None = None
    q: str | None = Field(default=None, max_length=200)
    sort: Literal["created", "priority"] = "created"
    order: Literal["desc", "asc"] = "desc"
    limit: int = Field(default=25, ge=1, le=100)
    next: str | None = Field(default=None, max_length=MAX_TOKEN)

    @model_validator(mode="after")
    def _range_ordered(self) -> "ListQuery":
        if self.created_from and self.created_to and self.created_from > self.created_to:
            raise ValueError("created_from must not be after created_to")
        return self


def parse_list_query(params: dict[str, str], registry: Registry) -> ListQuery:
    # An empty parameter (`?status=`, as a form sends it) means no filter.
    try:
        query = ListQuery.model_validate({name: value for name, value in params.items() if value != ""})
    except ValidationError as exc:
        fields = field_errors(exc)
        for field in fields:  # a model-level error names the first of the two fields it compares
            if field["field"] == "body":
                field["field"] = "created_from"
        raise invalid(fields) from exc
    if query.type is not None and query.type not in registry:
        raise invalid([{"field": "type", "message": f"must be one of: {', '.join(registry.names)}"}])
    return query


# ---- listing: one Query on one GSI ----

@dataclass(frozen=True)
class ListPlan:
    """One DynamoDB Query: which index, its key condition, and what is left to filter."""

    index: str
    hash_attribute: str
    hash_value: str
    range_attribute: str
    forward: bool
    range_between: tuple[str, str] | None = None  # key condition, inclusive
    range_prefix: str | None = None  # key condition: begins_with
    type: str | None = None  # the rest are FilterExpressions: read, then dropped
    priority: int | None = None
    created_between: tuple[str, str] | None = None
    q: str | None = None

    @property
    def filtered(self) -> bool:
        return any(v is not None for v in (self.type, self.priority, self.created_between, self.q))

    def matches(self, attributes: dict[str, Any]) -> bool:
        """Whether a job (its item's attributes) is in this listing: what the Query returns, for the in-memory twin."""
        def between(value: str, bounds: tuple[str, str] | None) -> bool:
            return bounds is None or bounds[0] <= value <= bounds[1]

        return (attributes.get(self.hash_attribute) == self.hash_value
                and between(attributes[self.range_attribute], self.range_between)
                and (self.range_prefix is None or attributes[self.range_attribute].startswith(self.range_prefix))
                and (self.type is None or attributes["type"] == self.type)
                and (self.priority is None or int(attributes["priority"]) == self.priority)
                and between(attributes["created_key"], self.created_between)
                and (self.q is None or self.q in attributes["search"]))


def plan_list(query: ListQuery) -> ListPlan:
    if query.status is not None:
        partition, value = "status", query.status
    elif query.type is not None:
        partition, value = "type", query.type
    else:
        partition, value = "all", "job"
    created = None
    if query.created_from or query.created_to:
        low = iso_key(query.created_from.timestamp()) if query.created_from else ""
        high = iso_key(query.created_to.timestamp()) + "~" if query.created_to else "~"  # '~' sorts after "#<id>"
        created = (low, high)
    by_created = query.sort == "created"
    return ListPlan(
        index=task_index_name(partition, query.sort),
        hash_attribute=TASK_INDEX_PARTITIONS[partition],
        hash_value=value,
        range_attribute=TASK_INDEX_SORTS[query.sort],
        forward=query.order == "asc",
        range_between=created if by_created else None,
        range_prefix=f"{query.priority}#" if query.priority is not None and not by_created else None,
        type=query.type if partition == "status" else None,
        priority=query.priority if by_created else None,
        created_between=None if by_created else created,
        q=query.q.lower() if query.q else None,
    )


def index_keys(plan: ListPlan, job: TaskJob) -> dict[str, str]:
    """The job's position in the plan's index: DynamoDB's ExclusiveStartKey for the next page."""
    hash_value = {"status": job.status, "type": job.type, "kind": "job"}[plan.hash_attribute]
    sort_value = (created_key(job.id, job.created_at) if plan.range_attribute == "created_key"
                  else priority_key(job.id, job.priority, job.created_at))
    return {"id": job.id, plan.hash_attribute: hash_value, plan.range_attribute: sort_value}


def encode_token(plan: ListPlan, key: dict[str, str]) -> str:
    raw = json.dumps({"v": 1, "i": plan.index, "k": key}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(plan: ListPlan, token: str) -> dict[str, str]:
    """The start key a `next` token carries, if it is one this query could have made; else 400."""
    bad = invalid([{"field": "next", "message": "is not a token this listing gave out (change no filter or sort "
                                                "while paging)"}])
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(decoded, dict) or decoded.get("v") != 1 or decoded.get("i") != plan.index:
        raise bad
    key = decoded.get("k")
    expected = {"id", plan.hash_attribute, plan.range_attribute}
    if not isinstance(key, dict) or set(key) != expected or not all(isinstance(v, str) for v in key.values()):
        raise bad
    # The start must lie in this query's partition, and be a key this index can hold (DynamoDB refuses others).
    if (key[plan.hash_attribute] != plan.hash_value or not JOB_ID.match(key["id"])
            or not key[plan.range_attribute].endswith("#" + key["id"]) or len(key[plan.range_attribute]) > 100):
        raise bad
    return key


# ---- views ----

def view(job: TaskJob, timeline: bool = True) -> dict:
    body = {
        "id": job.id, "type": job.type, "priority": job.priority, "status": job.status, "payload": job.payload,
        "caller": job.caller, "created_at": iso(job.created_at), "scheduled_for": iso(job.scheduled_for),
        "started_at": iso(job.started_at), "finished_at": iso(job.finished_at), "attempts": job.attempts,
        "max_attempts": job.max_attempts, "result": job.result, "error": job.error,
    }
    if timeline:
        body["timeline"] = [{"status": e.status, "at": iso(e.at), "worker": e.worker, "attempt": e.attempt,
                             "note": e.note} for e in job.timeline]
    return body


# ---- services ----

def body_hash(command) -> str:
    canonical = json.dumps(command.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit(store: TaskStore, registry: Registry, data: dict, caller: str | None, idempotency_key: str | None,
           max_attempts: int, now: float) -> tuple[TaskJob, bool]:
    """Validate, then store the job (with its idempotency claim, in one transaction). Returns (job, created)."""
    command = parse_new_job(data, registry)
    caller = check_caller(caller or DEFAULT_CALLER)
    key = check_idempotency_key(idempotency_key)
    due = command.scheduled_for.timestamp() if command.scheduled_for else None
    waits = due is not None and due > now
    job_id = new_job_id()
    payload = command.payload.model_dump(mode="json", by_alias=True)
    job = TaskJob(
        id=job_id, type=command.type, priority=command.priority, status="pending",
        place="scheduled" if waits else "queued", payload=payload, caller=caller, created_at=now,
        scheduled_for=due, max_attempts=max_attempts,
        timeline=[TimelineEntry(status="pending", at=now, attempt=0,
                                note=f"created; scheduled for {iso(due)}" if waits else "created")],
    )
    claim = (caller, key, body_hash(command)) if key else None
    try:
        return store.create(job, registry.main_text(job.type, payload), claim, now), True
    except DuplicateRequest as duplicate:
        if duplicate.body_hash != claim[2]:
            raise Conflict(f"Idempotency-Key {key!r} was used for job {duplicate.job_id} with a different body") from None
        existing = store.get(duplicate.job_id)
        if existing is None:  # the claim outlived its job: cannot happen unless someone deleted the job
            raise Conflict(f"Idempotency-Key {key!r} names job {duplicate.job_id}, which no longer exists") from None
        return existing, False


def wake_up(due: float, now: float) -> OutboundMessage:
    """A ticks-queue message that comes back when `due` comes, so admission runs then and not at the next
    watchdog, up to a minute later."""
    delay = min(SQS_MAX_DELAY_S, max(0, math.ceil(due - now)))
    return OutboundMessage(body=WakeUp(due=due).model_dump_json(), delay_seconds=delay)


def wake_up_when_due(ticks: MessageQueue, due: float, now: float) -> None:
    """For a job just scheduled: SQS can delay a message 15 minutes at most, so a later job waits for the
    watchdog's `wake_ups_due_soon`."""
    if due - now <= SQS_MAX_DELAY_S:
        ticks.send([wake_up(due, now)])


def wake_ups_due_soon(store: TaskStore, ticks: MessageQueue, now: float) -> int:
    """Run by the watchdog: one wake-up for each second in which scheduled jobs fall due before it runs again."""
    seconds = sorted({math.ceil(due) for due in store.due_by(now + WAKE_UP_HORIZON_S, 100) if due > now})
    ticks.send([wake_up(second, now) for second in seconds])
    return len(seconds)


def get(store: TaskStore, job_id: str) -> TaskJob:
    job = store.get(job_id) if JOB_ID.match(job_id) else None
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def list_jobs(store: TaskStore, registry: Registry, params: dict[str, str]) -> dict:
    query = parse_list_query(params, registry)
    plan = plan_list(query)
    start = decode_token(plan, query.next) if query.next else None
    jobs, more = store.list(plan, start, query.limit)
    return {"jobs": [view(job, timeline=False) for job in jobs],
            "next": encode_token(plan, index_keys(plan, jobs[-1])) if more and jobs else None}


def cancel(store: TaskStore, job_id: str, now: float) -> TaskJob:
    """pending -> cancelled, and out of wherever it waits. 409 once it runs or has finished."""
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


def retry(store: TaskStore, job_id: str, now: float) -> TaskJob:
    """An admin's second chance for a failed job: pending again, attempts from 1, back in its caller's backlog."""
    job = get(store, job_id)
    if job.status != "failed":
        raise Conflict(f"job {job_id} is {job.status}: only a failed job can be retried")
    try:
        store.retry(job, now)
    except StaleWrite as exc:
        raise Conflict(f"job {job_id} changed while it was being retried") from exc
    return get(store, job_id)


def stats(store: TaskStore, registry: Registry, now: float) -> dict:
    current = int(now) // 60 * 60
    since = current - (THROUGHPUT_MINUTES - 1) * 60
    counts = store.stats(since, current)
    by_type = {name: 0 for name in registry.names}
    by_type.update({name: count for name, count in counts.by_type.items() if count or name in by_type})
    return {
        "total": counts.total,
        "by_status": {status: max(0, counts.by_status.get(status, 0)) for status in TASK_STATUSES},
        "by_type": by_type,
        "throughput": [
            {"minute": iso(minute).replace(".000Z", "Z"), "completed": counts.minutes.get(minute, (0, 0))[0],
             "failed": counts.minutes.get(minute, (0, 0))[1]}
            for minute in range(since, current + 1, 60)
        ],
    }


def dispatch_state(store: TaskStore) -> dict:
    callers = store.callers()
    return {"paused": store.paused(), "backlog": sum(c.backlog for c in callers),
            "in_flight": sum(c.in_flight for c in callers)}


# ---- the worker's side: starting an attempt, and handing a failed one back ----

@dataclass(frozen=True)
class Held:
    """Another worker started this attempt less than a Lambda timeout ago, and may still be running it.

    Its message must come back once that worker cannot be: by then the attempt
    is settled (and the message is skipped) or taken over. Dropping it instead
    would leave the job `running` for ever if that worker's write failed.
    """

    retry_after_s: int


@dataclass
class TaskAttempts:
    """The worker's side of a typed job: each attempt starts with one conditional write, so a cancelled job is
    skipped, never run; then its type's executor runs it."""

    store: TaskStore
    registry: Registry
    latency_s: float = 0.0  # each attempt's simulated work (PACER_EXECUTOR_LATENCY_S)
    stale_after_s: float = 30.0  # a Lambda's timeout: a worker cannot still be running an attempt started this long ago

    def run(self, spec: JobSpec) -> dict:
        return self.registry.run(spec.type or "", spec.payload or {}, self.latency_s)

    def begin(self, spec: JobSpec, worker: str, now: float) -> Literal["run", "skip", "resend"] | Held:
        try:
            self.store.start(spec.id, spec.attempt, worker, now)
            return "run"
        except StaleWrite:
            pass
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
