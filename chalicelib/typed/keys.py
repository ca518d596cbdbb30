"""Typed jobs' storage keys: the order of each list, derived from a job and never changed after it is created.

Both adapters use them, so the in-memory twin sorts exactly as DynamoDB does.
"""
from __future__ import annotations

from typing import Any

from chalicelib.admission.models import caller_limit, type_limit
from chalicelib.core.jobs import JobSpec
from chalicelib.core.times import iso_key
from chalicelib.typed.models import JobTarget, TypedBacklogItem, TypedJob


def created_key(job_id: str, created_at: float) -> str:
    return f"{iso_key(created_at)}#{job_id}"


def priority_key(job_id: str, priority: int, created_at: float) -> str:
    return f"{priority}#{iso_key(created_at)}#{job_id}"


def backlog_key(item: TypedBacklogItem) -> str:
    """A caller's backlog in ascending key order: priority 5 first, then the oldest."""
    return f"{9 - item.priority}#{iso_key(item.created_at)}#{item.id}"


def backlog_partition(item: TypedBacklogItem) -> str:
    """A Lambda job waits in `TQ#<caller>`, which admission reads; a bot job in `BQ#<caller>`, which bots claim
    from (chalicelib/bots/), so neither sees the other's."""
    return f"{'BQ' if item.target == 'bot' else 'TQ'}#{item.caller}"


def callers_partition(target: JobTarget) -> str:
    """Each caller's backlog and in-flight counts: admission's for Lambda jobs, the bots' own for bot jobs."""
    return "BCALLERS" if target == "bot" else "TCALLERS"


def schedule_key(item: TypedBacklogItem) -> str:
    return f"{iso_key(item.due or 0)}#{item.id}"


def search_text(job_id: str, main_text: str) -> str:
    return f"{job_id} {main_text}".lower()


def listing_attributes(job: TypedJob, main_text: str) -> dict[str, Any]:
    """The attributes the GSIs key on and `q` filters on, besides `status` and `type`."""
    return {"kind": "job", "created_key": created_key(job.id, job.created_at),
            "priority_key": priority_key(job.id, job.priority, job.created_at), "search": search_text(job.id, main_text)}


def backlog_item(job: TypedJob) -> TypedBacklogItem:
    return TypedBacklogItem(id=job.id, type=job.type, priority=job.priority, payload=job.payload, caller=job.caller,
                           created_at=job.created_at, due=job.scheduled_for if job.place == "scheduled" else None,
                           correlation_id=job.correlation_id, target=job.target, attempts=job.attempts,
                           max_attempts=job.max_attempts)


def typed_job_spec(item: TypedBacklogItem) -> JobSpec:
    """What the dispatcher sends for a backlog item: the job's first attempt."""
    return JobSpec(id=item.id, type=item.type, payload=item.payload, submitted_at=item.created_at,
                   correlation_id=item.correlation_id)


def typed_limit_keys(item: TypedBacklogItem) -> tuple[str, ...]:
    """The rate limits a typed job keeps to: its type's and its caller's."""
    return type_limit(item.type), caller_limit(item.caller)
