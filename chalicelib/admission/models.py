"""What admission keeps per caller and per dispatcher, and the admin's commands to weigh a caller and to limit a rate."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import AbstractSet

from pydantic import BaseModel, Field, field_validator, model_validator

from chalicelib.core.jobs import Origin, OutboundMessage
from chalicelib.core.validation import MAX_CALLER_ID, Request

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
    admission/service.py), or by a pass whose rate limits held jobs back: the timer (admission/limits.py)."""

    admit: Origin
    # The timer's pass must come early in a second to give out slots; arriving later, it waits for the next second.
    early: bool = False


ASK_DELAY_S = 1  # an AdmitRequest's SQS delay (whole seconds): the pass it asks for comes a second on


def ask_for_pass(origin: Origin, early: bool = False) -> OutboundMessage:
    """The ticks-queue message that asks for a pass of `origin` ASK_DELAY_S from now."""
    return OutboundMessage(body=AdmitRequest(admit=origin, early=early).model_dump_json(), delay_seconds=ASK_DELAY_S)


class CallerWeight(BaseModel):
    """An admin's weighing of a caller, as applied."""

    caller: str
    weight: float


# ---- rate limits (admission/limits.py) ----

MAX_PER_MINUTE = 1_000_000.0  # far beyond what one window admits; bounded so it is a number DynamoDB stores


def type_limit(job_type: str) -> str:
    """The limit key of a job type: every job of the type, whoever submits it."""
    return f"type:{job_type}"


def held_types(keys: AbstractSet[str]) -> list[str]:
    """The job types among limit keys."""
    return sorted(key[len("type:"):] for key in keys if key.startswith("type:"))


def caller_limit(caller: str) -> str:
    """The limit key of a caller: every job the caller submits, of any type."""
    return f"caller:{caller}"


@dataclass
class Service:
    """Weighted round robin's memory across passes: the jobs admitted per unit of weight to each caller that still
    has work (its *virtual time*), and the floor no caller starts below (the slowest backlogged caller's).

    A caller's next quantum starts at its virtual time or the floor, whichever is later, and the earliest start
    is served first: while callers are backlogged each is admitted in proportion to its weight, whatever its jobs
    cost to run, and one that was idle starts level with the others, with no credit saved up. Counting what is in
    flight alone gave a light caller's quick jobs more than its share: a worker takes a batch's messages round
    robin by caller, so a caller with fewer messages in flight has each one run sooner (weights 2:1 came out
    1.5:1)."""

    floor: float = 0.0
    of: dict[str, float] = field(default_factory=dict)  # caller -> jobs admitted per unit of weight

    def start(self, caller: str) -> float:
        return max(self.of.get(caller, 0.0), self.floor)

    def record(self, admitted: dict[str, int], weights: dict[str, float], wanting: set[str],
               active: set[str]) -> None:
        """A pass admitted `admitted` jobs per caller. `wanting`: who still has admissible backlog; `active`:
        who has a backlog or jobs in flight (the others are forgotten: they start at the floor when back)."""
        for caller, jobs in admitted.items():
            self.of[caller] = self.start(caller) + jobs / weights.get(caller, 1.0)
        behind = [self.start(caller) for caller in wanting]
        self.floor = max(self.floor, min(behind) if behind else max(self.of.values(), default=self.floor))
        self.of = {caller: v for caller, v in self.of.items() if caller in active and v > self.floor}


@dataclass
class Lease:
    """What the one dispatcher holds while it admits: the round-robin cursor, weighted round robin's memory and the
    rate limits' state, read with the lease and written back when it is let go, so they cost a pass no extra
    call. The admin's switches (rate limits, pause) are kept on it for the same reason."""

    cursor: int = 0
    per_minute: dict[str, float] = field(default_factory=dict)  # limit key -> jobs per minute
    # limit key -> the start of each of its windows not yet over (limits.limit_window) -> jobs given out in it
    given: dict[str, dict[float, int]] = field(default_factory=dict)
    timer_at: float = 0.0  # when the AdmitRequest a held-back pass sent is due (0: none on its way)
    service: Service = field(default_factory=Service)
    paused: bool = False  # an admin's switch (typed jobs): admit nothing while it is on


class SetLimit(Request):
    """An admin's rate limit on typed jobs: of one type, or of one caller (exactly one of the two)."""

    type: str | None = Field(default=None, description="a job type: limits every job of the type")
    caller: str | None = Field(default=None, description="an X-Caller-ID: limits every typed job the caller submits")
    per_minute: float | None = Field(gt=0, le=MAX_PER_MINUTE, allow_inf_nan=False,
                                     description="jobs per minute, spread evenly; null removes the limit")

    @field_validator("caller")
    @classmethod
    def an_x_caller_id(cls, caller: str | None) -> str | None:
        if caller is not None and (not caller.strip() or len(caller) > MAX_CALLER_ID or not caller.isprintable()
                                   or "#" in caller):
            raise ValueError(f"must be an X-Caller-ID: up to {MAX_CALLER_ID} printable characters without '#'")
        return caller.strip() if caller is not None else None

    @model_validator(mode="after")
    def one_subject(self) -> "SetLimit":
        if (self.type is None) == (self.caller is None):
            raise ValueError("name exactly one of type and caller")
        return self


class RateLimit(BaseModel):
    """A rate limit in force: on a type or a caller, in jobs per minute."""

    type: str | None = None
    caller: str | None = None
    per_minute: float | None


class RateLimits(BaseModel):
    limits: list[RateLimit]
