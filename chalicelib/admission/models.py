"""What admission keeps per caller, and the admin's command to weigh one."""
from __future__ import annotations

from pydantic import BaseModel, Field

from chalicelib.core.validation import Request

MAX_WEIGHT = 100.0


class CallerCounts(BaseModel):
    caller: str
    backlog: int = 0
    in_flight: int = 0
    done: int = 0
    failed: int = 0
    weight: float = 1.0  # the caller's share of the window against the others' (weighted fair shares)


class SetWeight(Request):
    weight: float = Field(gt=0, le=MAX_WEIGHT, allow_inf_nan=False,
                          description="the caller's share of the in-flight window relative to others (1 by default)")


class CallerWeight(BaseModel):
    """An admin's weighing of a caller, as applied."""

    caller: str
    weight: float
