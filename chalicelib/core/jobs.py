"""The job as every way in shares it: what a message carries, and the outcome a worker records.

A job is one unit of work with one outcome, whichever way it came in (its
origin). Each job belongs to a group: its run for a paced job, its caller for
fair compute and typed jobs. Counters and fairness are kept per group.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, field_validator

# Which way a job came in. Outcomes are recorded the same way; only what they settle besides differs.
Origin = Literal["run", "compute", "typed"]
ORIGINS: tuple[Origin, ...] = ("run", "compute", "typed")

SQS_MAX_DELAY_S = 900  # SQS's limit on DelaySeconds (and on a message's visibility delay as we use it)

# Messages written before the vocabulary settled said `run_id` for the group and `task` for a
# typed job's origin; both are still read, so messages in flight across an upgrade are not lost.
_GROUP = Field(validation_alias=AliasChoices("group", "run_id"))


def _origin_of(value: Any) -> Any:
    return "typed" if value == "task" else value


class JobSpec(BaseModel):
    id: str
    number: str | None = None  # runs and compute: decimal digits (numbers may exceed 64 bits)
    attempt: int = 1
    submitted_at: float | None = None  # when the caller asked (compute, typed) or the job fell due (a run)
    type: str | None = None  # typed jobs: the executor to run (typed/executors.py) …
    payload: dict[str, Any] | None = None  # … and its payload, validated again by the executor
    # The request the job came from (observability/logs.py); messages written before it was carried have none.
    correlation_id: str | None = None


class JobEnvelope(BaseModel):
    """One SQS message: several jobs of one origin and one group, admitted together."""

    v: Literal[1] = 1
    origin: Origin = "run"
    group: str = _GROUP  # the run, or the caller
    jobs: list[JobSpec] = Field(min_length=1)
    # Rate-limited jobs: when their slots' second starts. A message may be sent up to a second early, and the
    # worker holds it until then (admission/limits.py).
    not_before: float | None = None
    # When admission sent it (fair compute, typed jobs): each of its jobs' outcomes carries it to settlement, which
    # records it (a compute number's admitted_at), so admission writes nothing per job for it.
    admitted_at: float | None = None

    _read_origin = field_validator("origin", mode="before")(_origin_of)


class JobOutcome(BaseModel):
    job_id: str
    group: str = _GROUP  # the run, or the caller (see JobEnvelope)
    origin: Origin = "run"
    submitted_at: float | None = None  # a paced job's due time; when the caller asked, for the others
    started_at: float | None = None  # when this (last) attempt began: queue wait = started_at - submitted_at
    admitted_at: float | None = None  # its message's (JobEnvelope.admitted_at)
    type: str | None = None  # typed jobs: the job's type
    number: str | None = None  # runs and compute
    outcome: Literal["done", "failed"]
    factors: list[str] = Field(default_factory=list)
    result: dict[str, Any] | None = None  # typed jobs: what the executor returned
    error: str | None = None
    attempt: int
    worker: str
    finished_at: float
    correlation_id: str | None = None  # the job's (JobSpec.correlation_id), for the ledger's lines

    _read_origin = field_validator("origin", mode="before")(_origin_of)


class OutboundMessage(BaseModel):
    body: str
    delay_seconds: int = Field(default=0, ge=0, le=SQS_MAX_DELAY_S)
    # SQS fair queues (AWS): messages of one group (a caller) are not let crowd out other groups.
    group_id: str | None = None
