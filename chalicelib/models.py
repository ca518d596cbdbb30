"""The pydantic models that cross Pacer's boundaries: HTTP bodies, stored records, messages."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# A run may ask for 1,000,000 jobs per 1/600 minute (0.1 s); that is "as fast as
# the workers go". A week is the slowest period worth pacing.
MAX_X = 1_000_000
MAX_Y_MINUTES = 7 * 24 * 60
MAX_TOTAL = 10_000_000


class _Request(BaseModel):
    # Strict: "10" is not 10, and true is not 1. Unknown fields are named back.
    model_config = ConfigDict(extra="forbid", strict=True)


class StartRun(_Request):
    x: int = Field(ge=1, le=MAX_X, description="jobs per y minutes")
    y: float = Field(gt=0, le=MAX_Y_MINUTES, allow_inf_nan=False, description="minutes, may be fractional")
    total: int | None = Field(default=None, ge=1, le=MAX_TOTAL, description="stop after this many jobs")


class ChangeRate(_Request):
    x: int = Field(ge=1, le=MAX_X)
    y: float = Field(gt=0, le=MAX_Y_MINUTES, allow_inf_nan=False)


RunState = Literal["running", "stopped"]


class Run(BaseModel):
    """A paced run as stored. Counters only ever move through conditional writes.

    The pacing schedule is anchored: job `anchor_index` is due at `anchor_at`,
    and each next job 1/rate seconds later. A rate change re-anchors at the
    first job not yet enqueued, so jobs already in flight keep their times.
    """

    run_id: str
    state: RunState
    x: int
    y: float
    total: int | None = None
    anchor_at: float
    anchor_index: int = 0
    enqueued: int = 0
    processed: int = 0
    failed: int = 0
    settled: int = 0  # processed + failed, kept as one attribute so conditions can read it
    tick_token: str = ""  # the one scheduler tick allowed to advance this run; "" when none should
    tick_at: float = 0.0
    started_at: float
    updated_at: float
    stopped_at: float | None = None

    @property
    def rate_per_second(self) -> float:
        return self.x / (self.y * 60.0)

    @property
    def fully_enqueued(self) -> bool:
        return self.total is not None and self.enqueued >= self.total

    @property
    def completed(self) -> bool:
        return self.total is not None and self.settled >= self.total

    @property
    def active(self) -> bool:
        return self.state == "running" and not self.completed


class ThroughputBucket(BaseModel):
    t: int  # epoch second
    enqueued: int = 0
    processed: int = 0
    failed: int = 0


class Slice(BaseModel):
    """Jobs [start, end) of a run, claimed by a tick but perhaps not yet sent (the outbox)."""

    run_id: str
    start: int
    end: int
    created_at: float


class JobSpec(BaseModel):
    id: str
    number: str | None = None  # runs and compute: decimal digits (numbers may exceed 64 bits)
    attempt: int = 1
    submitted_at: float | None = None  # compute requests: when the caller asked, for wait times
    type: str | None = None  # typed jobs: the executor to run (chalicelib/executors.py) …
    payload: dict[str, Any] | None = None  # … and its payload, validated again by the executor


# Which way a job came in. Outcomes are recorded the same way; only the counters they move differ.
Origin = Literal["run", "compute", "task"]


class JobEnvelope(BaseModel):
    """One SQS message: several jobs of one origin (a run, or a compute caller) admitted together."""

    v: Literal[1] = 1
    origin: Origin = "run"
    run_id: str  # the origin's id: the run, or for compute the caller
    jobs: list[JobSpec] = Field(min_length=1)


class Tick(BaseModel):
    """A wake-up for the scheduler. Only the tick holding the run's current token acts."""

    run_id: str
    token: str


class WakeUp(BaseModel):
    """A wake-up for typed-job admission, sent on the ticks queue when a job is scheduled: it comes back when the
    job falls due (SQS delays at most 15 minutes, so a later one waits again), and admission runs then."""

    due: float


class JobOutcome(BaseModel):
    job_id: str
    run_id: str  # the origin's id (see JobEnvelope)
    origin: Origin = "run"
    submitted_at: float | None = None
    number: str | None = None  # runs and compute
    outcome: Literal["done", "failed"]
    factors: list[str] = Field(default_factory=list)
    result: dict[str, Any] | None = None  # typed jobs: what the executor returned
    error: str | None = None
    attempt: int
    worker: str
    finished_at: float


SQS_MAX_DELAY_S = 900  # SQS's limit on DelaySeconds (and on a message's visibility delay as we use it)


class OutboundMessage(BaseModel):
    body: str
    delay_seconds: int = Field(default=0, ge=0, le=SQS_MAX_DELAY_S)
    # SQS fair queues (AWS): messages of one group (a compute caller) are not let crowd out other groups.
    group_id: str | None = None


class AchievedRate(BaseModel):
    window_s: int
    enqueued_per_min: float
    processed_per_min: float


class RunStatus(BaseModel):
    state: Literal["idle", "running", "stopped", "completed"]
    run_id: str | None = None
    x: int | None = None
    y: float | None = None
    total: int | None = None
    configured_per_min: float | None = None
    enqueued: int = 0
    processed: int = 0
    failed: int = 0
    in_flight: int = 0
    achieved: AchievedRate = AchievedRate(window_s=60, enqueued_per_min=0.0, processed_per_min=0.0)
    series: list[ThroughputBucket] = Field(default_factory=list)
    started_at: str | None = None
    updated_at: str | None = None
    stopped_at: str | None = None


class SetConcurrency(_Request):
    concurrency: int = Field(ge=1, le=100, description="job-worker processes (AWS: MaximumConcurrency, at least 2)")


class WorkerBeat(BaseModel):
    """What a worker process last said about itself."""

    worker_id: str
    state: Literal["idle", "busy", "stopped"]
    started_at: float
    last_beat_at: float
    jobs_done: int = 0


class WorkerView(BaseModel):
    id: str
    state: Literal["idle", "busy", "stopped", "down"]
    started_at: str
    last_beat_at: str
    seconds_since_beat: float
    jobs_done: int


class Fleet(BaseModel):
    concurrency: int | None
    down_after_s: float
    workers: list[WorkerView]


class DeadLetter(BaseModel):
    message_id: str
    body: str
    receive_count: int
    sent_at: str | None = None
    reason: str | None = None  # the worker's last recorded failure, where known


class DeadLetters(BaseModel):
    count: int  # approximate number in the DLQ
    messages: list[DeadLetter]


class Redriven(BaseModel):
    moved: int
    remaining: int


# ---- fair compute (issue #5) ----

class ComputeSubmit(_Request):
    number: str = Field(description="decimal digits, no sign")


class ComputeBatchSubmit(_Request):
    numbers: list[str] = Field(min_length=1, max_length=100)


ComputeStatus = Literal["pending", "running", "done", "failed"]


class ComputeRequest(BaseModel):
    """One caller's request for one number. Only the request that claimed the number (`owner`) is computed."""

    id: str
    caller: str
    number: str
    owner: bool
    submitted_at: float


class NumberRecord(BaseModel):
    """The one stored factorisation of a number, shared by every request for it."""

    number: str
    status: ComputeStatus
    job_id: str  # the owner request's id: the job that computes it
    factors: list[str] = Field(default_factory=list)
    error: str | None = None
    computations: int = 0  # outcomes recorded for this number: 1 once done, whoever asked
    admitted_at: float | None = None
    finished_at: float | None = None


class Accepted(BaseModel):
    id: str
    status: ComputeStatus


class ComputeView(BaseModel):
    id: str
    caller: str
    number: str
    status: ComputeStatus
    factors: list[str] = Field(default_factory=list)
    cached: bool
    error: str | None = None
    submitted_at: float
    admitted_at: float | None = None
    finished_at: float | None = None
    wait_s: float | None = None  # submitted to finished


class BacklogItem(BaseModel):
    id: str
    number: str
    submitted_at: float


class CallerCounts(BaseModel):
    caller: str
    backlog: int = 0
    in_flight: int = 0
    done: int = 0
    failed: int = 0


class CallerStats(CallerCounts):
    p50_wait_s: float | None = None
    p95_wait_s: float | None = None


class Callers(BaseModel):
    callers: list[CallerStats]


# ---- typed jobs (issue #6) ----

TaskStatus = Literal["pending", "running", "completed", "failed", "cancelled"]
TASK_STATUSES: tuple[str, ...] = ("pending", "running", "completed", "failed", "cancelled")
# Where a pending job waits: the schedule (until scheduled_for), its caller's backlog, or SQS (admitted).
# A job that is not pending is nowhere.
TaskPlace = Literal["scheduled", "queued", "admitted", "none"]


class TimelineEntry(BaseModel):
    status: TaskStatus
    at: float
    worker: str | None = None
    attempt: int = 0
    note: str | None = None


class TaskJob(BaseModel):
    """A typed job as stored: one item in the tasks table, keyed by id."""

    id: str
    type: str
    priority: int
    status: TaskStatus
    place: TaskPlace
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


class TaskBacklogItem(BaseModel):
    """A pending job in its caller's backlog or in the schedule: what admission needs to send it."""

    id: str
    type: str
    priority: int
    payload: dict[str, Any]
    caller: str
    created_at: float
    due: float | None = None  # the schedule only


class TaskStats(BaseModel):
    by_status: dict[str, int]
    by_type: dict[str, int]
    total: int
    minutes: dict[int, tuple[int, int]]  # epoch minute start -> (completed, failed)


class SetDispatch(_Request):
    paused: bool
