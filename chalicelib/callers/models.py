"""Each caller, per way in: what GET /api/callers answers, and the settled-job sample its figures come from."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from chalicelib.core.jobs import JobOutcome

# The ways in that have callers: paced runs are paced per run, not per caller.
CallerOrigin = Literal["compute", "typed"]


class Settled(BaseModel):
    """One settled job of a caller, as its way in's settlement samples it (one item in the same transaction)."""

    finished_at: float
    queue_wait_s: float | None = None  # submitted to started; None in samples written before starts were kept

    @classmethod
    def of(cls, outcome: JobOutcome) -> "Settled":
        wait = None
        if outcome.submitted_at is not None and outcome.started_at is not None:
            # The API's clock stamped the submit, a worker's the start: a skew of a few ms must not read negative.
            wait = max(0.0, outcome.started_at - outcome.submitted_at)
        return cls(finished_at=outcome.finished_at, queue_wait_s=wait)


class CallerView(BaseModel):
    """One caller in one way in: admission's counts and weight, and figures over its latest settled jobs."""

    caller: str
    origin: CallerOrigin = Field(description="the way in: `compute` (fair compute) or `typed` (typed jobs)")
    weight: float = Field(description="the caller's fair share against other callers (1 by default); "
                                      "PUT /api/callers/{caller} sets it for every way in")
    limit: float | None = Field(default=None, description="the caller's rate limit in jobs per minute; null when none")
    backlog: int = Field(description="jobs accepted and not yet admitted")
    in_flight: int = Field(description="jobs admitted to the jobs queue and not yet settled")
    done: int
    failed: int
    throughput_per_min: float = Field(
        description="jobs settled in the last 60 s; when every sampled job settled within them, the rate over the "
                    "sample's span, per minute")
    p50_wait_s: float | None = Field(default=None, description="median queue wait (submitted to started), seconds")
    p95_wait_s: float | None = Field(default=None, description="95th percentile queue wait, seconds")
    sampled: int = Field(description="how many of the caller's latest settled jobs the throughput and waits are taken "
                                     "over (at most `sample_size`)")


class Callers(BaseModel):
    callers: list[CallerView] = Field(description="one row per caller and way in, by caller then way in")
    sample_size: int = Field(description="the most settled jobs read per row")
    window_s: float = Field(description="the throughput window, seconds")
