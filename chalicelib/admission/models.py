"""What admission keeps per caller, and the admin's command to weigh one."""
from __future__ import annotations

from pydantic import BaseModel, Field

from chalicelib.core.jobs import Origin
from chalicelib.core.validation import Request

MAX_WEIGHT = 100.0
# The lightest weight: a thousandth of the default's share is as light as fairness needs, and a tinier one (5e-324)
# underflowed DynamoDB's numbers when it was written: a 500 for bad input.
MIN_WEIGHT = 0.001


class CallerCounts(BaseModel):
    caller: str
    backlog: int = 0
    in_flight: int = 0
    done: int = 0
    failed: int = 0
    weight: float = 1.0  # the caller's share of the window against the others' (weighted fair shares)


class SetWeight(Request):
    weight: float = Field(ge=MIN_WEIGHT, le=MAX_WEIGHT, allow_inf_nan=False,
                          description="the caller's share of the in-flight window relative to others (1 by default)")


class AdmitRequest(BaseModel):
    """A request for a dispatch pass of one way in, sent on the ticks queue by a throttled submit (see
    admission/service.py)."""

    admit: Origin


class CallerWeight(BaseModel):
    """An admin's weighing of a caller, as applied."""

    caller: str
    weight: float
