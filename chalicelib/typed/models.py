"""Typed jobs' models: the stored job, its timeline, its place in admission, the counters."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from chalicelib.core.validation import Request

TypedJobStatus = Literal["pending", "running", "completed", "failed", "cancelled"]

TYPED_JOB_STATUSES: tuple[str, ...] = ("pending", "running", "completed", "failed", "cancelled")


# Where a pending job waits: the schedule (until scheduled_for), its caller's backlog, or SQS (admitted).
# A job that is not pending is nowhere.
TypedJobPlace = Literal["scheduled", "queued", "admitted", "none"]

# Where a typed job runs: on Pacer's own workers (admitted to SQS), or on a bot that claims it over HTTP
# (chalicelib/bots/); a bot's job waits in its own backlog partition, which Lambda admission never reads.
JobTarget = Literal["lambda", "bot"]


class TimelineEntry(BaseModel):
    status: TypedJobStatus
    at: float
    worker: str | None = None
    attempt: int = 0
    note: str | None = None


class TypedJob(BaseModel):
    """A typed job as stored: one item in the typed-jobs table, keyed by id."""

    id: str
    type: str
    priority: int
    status: TypedJobStatus
    place: TypedJobPlace
    payload: dict[str, Any]
    caller: str
    created_at: float
    scheduled_for: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0  # attempts started (since the last admin retry)
    max_attempts: int
    result: dict[str, Any] | None = None
    error: str | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)
    correlation_id: str | None = None  # the request that created it (observability/logs.py); its job carries it
    target: JobTarget = "lambda"  # items stored before bots existed read as lambda
    bot: str | None = None  # a bot job: the bot holding it, or that held it last


class TypedBacklogItem(BaseModel):
    """A pending job in its caller's backlog or in the schedule: what admission needs to send it."""

    id: str
    type: str
    priority: int
    payload: dict[str, Any]
    caller: str
    created_at: float
    due: float | None = None  # the schedule only
    correlation_id: str | None = None
    target: JobTarget = "lambda"
    attempts: int = 0  # a bot job's attempts so far: its claim is conditional on it
    not_before: float | None = None  # a bot job handed back for a retry: claimable from then on (its backoff)
    max_attempts: int | None = None  # the job's, so a bot's claim answers it without reading the job (None: older)


class TypedJobStats(BaseModel):
    by_status: dict[str, int]
    by_type: dict[str, int]
    total: int
    minutes: dict[int, tuple[int, int]]  # epoch minute start -> (completed, failed)


class SetDispatch(Request):
    paused: bool


class WakeUp(BaseModel):
    """A wake-up for typed-job admission, sent on the ticks queue when a job is scheduled: it comes back when the
    job falls due (SQS delays at most 15 minutes, so a later one waits again), and admission runs then."""

    due: float


# What the API answers about typed jobs (every time an ISO 8601 string, as everywhere in the API).

class TimelineView(BaseModel):
    status: TypedJobStatus
    at: str
    worker: str | None
    attempt: int
    note: str | None


class JobSummary(BaseModel):
    """A typed job as a listing shows it."""

    id: str
    type: str
    priority: int
    status: TypedJobStatus
    payload: dict[str, Any]
    caller: str
    created_at: str
    scheduled_for: str | None
    started_at: str | None
    finished_at: str | None
    attempts: int
    max_attempts: int
    result: dict[str, Any] | None
    error: str | None
    target: JobTarget = Field(description="`lambda`: Pacer's own workers; `bot`: claimed by a bot over HTTP")
    bot: str | None = Field(description="a bot job: the bot that holds it, or held it last")


class JobView(JobSummary):
    """A typed job as its own page shows it: with its timeline of status changes."""

    timeline: list[TimelineView]


class JobList(BaseModel):
    jobs: list[JobSummary]
    next: str | None = Field(description="pass as `next` for the following page; null on the last")


MAX_POPULATE = 100  # jobs a populate creates at once


class PopulateJobs(Request):
    """An admin's batch of generated typed jobs (seed 004's steady supply); every field defaults from the stage."""

    count: int | None = Field(default=None, ge=1, le=MAX_POPULATE,
                              description="jobs to create (PACER_POPULATE_BATCH_SIZE, 5, if omitted)")
    type: str | None = Field(default=None, description="their job type (PACER_POPULATE_TYPE if omitted; unset, "
                                                       "each registered type in turn)")
    target: JobTarget | None = Field(default=None, description="where they run (the type's default if omitted)")
    priority: int = Field(default=3, ge=1, le=5, description="5 is the highest")


class Populated(BaseModel):
    jobs: list[JobSummary]


class ThroughputMinute(BaseModel):
    minute: str
    completed: int
    failed: int


class StatsView(BaseModel):
    total: int
    by_status: dict[str, int]
    by_type: dict[str, int]
    throughput: list[ThroughputMinute] = Field(description="the last hour, one entry a minute, oldest first")


class DispatchState(BaseModel):
    paused: bool
    backlog: int = Field(description="typed jobs waiting in callers' backlogs")
    in_flight: int = Field(description="typed jobs admitted to the jobs queue and not yet settled")
