"""Paced runs' models: the commands, the stored run, its ticks and its status."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from chalicelib.core.validation import Request

# A run may ask for 1,000,000 jobs per 0.001 minute (60 ms); that is "as fast as
# the workers go", and bounds the rate well inside what DynamoDB's numbers hold (a
# tinier y underflowed or overflowed them when the run was written). A week is the
# slowest period worth pacing.
MAX_X = 1_000_000

MIN_Y_MINUTES = 0.001
MAX_Y_MINUTES = 7 * 24 * 60

MAX_TOTAL = 10_000_000


class StartRun(Request):
    x: int = Field(ge=1, le=MAX_X, description="jobs per y minutes")
    y: float = Field(ge=MIN_Y_MINUTES, le=MAX_Y_MINUTES, allow_inf_nan=False, description="minutes, may be fractional")
    total: int | None = Field(default=None, ge=1, le=MAX_TOTAL, description="stop after this many jobs")


class ChangeRate(Request):
    x: int = Field(ge=1, le=MAX_X)
    y: float = Field(ge=MIN_Y_MINUTES, le=MAX_Y_MINUTES, allow_inf_nan=False)


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
    correlation_id: str | None = None  # the request that started it: every job of the run carries it

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


class Tick(BaseModel):
    """A wake-up for the scheduler. Only the tick holding the run's current token acts."""

    run_id: str
    token: str


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
