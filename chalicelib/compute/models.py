"""Fair compute's models: the requests, the one record per number, the views."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from chalicelib.core.validation import Request, setting_limits

# Checked by compute.service.check_number, which names the problem; the schema says the same.
Digits = Annotated[str, Field(description="decimal digits, no sign, at least 2",
                              json_schema_extra={"pattern": "^[0-9]+$",
                                                 **setting_limits(maxLength="compute_max_digits")})]


class ComputeSubmit(Request):
    number: Digits


class ComputeBatchSubmit(Request):
    numbers: list[Digits] = Field(min_length=1, max_length=100)


ComputeStatus = Literal["pending", "running", "done", "failed"]


class ComputeRequest(BaseModel):
    """One caller's request for one number. Only the request that claimed the number (`owner`) is computed."""

    id: str
    caller: str
    number: str
    owner: bool
    submitted_at: float
    correlation_id: str | None = None  # the request's (observability/logs.py); its job carries it


class NumberRecord(BaseModel):
    """The one stored factorisation of a number, shared by every request for it."""

    number: str
    status: ComputeStatus
    job_id: str  # the owner request's id: the job that computes it
    # The owner request's caller and submit, which place it in its caller's backlog: while it is there the number
    # is pending, and once admission has taken it out, running (records stored before these were kept say so).
    caller: str | None = None
    submitted_at: float | None = None
    factors: list[str] = Field(default_factory=list)
    error: str | None = None
    computations: int = 0  # 1 once the ledger has settled its owner's job (once), whoever asked
    admitted_at: float | None = None  # recorded when it settles, from its message
    finished_at: float | None = None


class Accepted(BaseModel):
    id: str
    status: ComputeStatus


class AcceptedBatch(BaseModel):
    jobs: list[Accepted] = Field(description="one per number, in the order given")


class ComputeView(BaseModel):
    id: str
    caller: str
    number: str
    status: ComputeStatus
    factors: list[str] = Field(default_factory=list)
    cached: bool
    error: str | None = None
    submitted_at: str  # ISO 8601, as every time the API gives
    admitted_at: str | None = Field(default=None, description="when admission sent the number to the jobs queue; "
                                    "recorded when it settles (null while pending or running, and when cached)")
    finished_at: str | None = None
    wait_s: float | None = None  # seconds, submitted to finished


class ComputeBacklogItem(BaseModel):
    id: str
    number: str
    submitted_at: float
    correlation_id: str | None = None

