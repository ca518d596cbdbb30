"""Schedule expressions, a schedule clock that tests can speed up, and the event EventBridge sends.

Why a rate schedule fires once at startup: EventBridge fires a rate rule
first one period after the rule is created, which on AWS happens once per
deployment. This runtime starts again on every `make up` and after every
crash; waiting a full period each time would hide a schedule just when it is
needed most. A watchdog on `rate(5 minutes)` should look for work that a
crash left behind at once, not five minutes later. So a rate fires at
startup and then every period. A cron expression names wall-clock times and
fires only at those.

`PACER_RUNTIME_SCHEDULE_SCALE` (default 1.0) multiplies every period: with
0.01 a `rate(1 minute)` fires every 0.6 s. It does so by running the schedule
clock 1/scale times as fast as real time, which treats rates and cron alike.
"""
from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping, Union

from chalice.app import ScheduleExpression
from croniter import croniter

from infra.runtime.project import EMULATED_ACCOUNT_ID

SCALE_VARIABLE = "PACER_RUNTIME_SCHEDULE_SCALE"

_RATE_UNIT_SECONDS = {
    "minute": 60, "minutes": 60,
    "hour": 3600, "hours": 3600,
    "day": 86400, "days": 86400,
}
_RATE = re.compile(r"^rate\(\s*(\d+)\s+([a-z]+)\s*\)$", re.IGNORECASE)
_CRON = re.compile(r"^cron\((.*)\)$", re.IGNORECASE)


@dataclass(frozen=True)
class RateSchedule:
    period: timedelta
    fires_at_startup = True

    def next_after(self, moment: datetime) -> datetime:
        return moment + self.period

    def __str__(self) -> str:
        return f"every {self.period}, first at startup"


@dataclass(frozen=True)
class CronSchedule:
    expression: str  # five fields, as croniter reads them
    fires_at_startup = False

    def next_after(self, moment: datetime) -> datetime:
        return croniter(self.expression, moment).get_next(datetime)

    def __str__(self) -> str:
        return f"at cron {self.expression!r} (UTC)"


Schedule = Union[RateSchedule, CronSchedule]


def parse_schedule(expression: str | ScheduleExpression) -> Schedule:
    """Read `rate(5 minutes)`, `cron(0 12 * * ? *)` or chalice's Rate and Cron objects."""
    text = expression if isinstance(expression, str) else expression.to_string()
    text = text.strip()
    if rate := _RATE.match(text):
        return _rate_schedule(int(rate.group(1)), rate.group(2).lower(), text)
    if cron := _CRON.match(text):
        return CronSchedule(croniter_expression(cron.group(1)))
    raise ValueError(f"unsupported schedule expression {text!r}: expected rate(...) or cron(...)")


def _rate_schedule(value: int, unit: str, text: str) -> RateSchedule:
    if unit not in _RATE_UNIT_SECONDS or value <= 0:
        raise ValueError(f"unsupported rate {text!r}: expected a positive number of minutes, hours or days")
    return RateSchedule(timedelta(seconds=value * _RATE_UNIT_SECONDS[unit]))


def croniter_expression(aws_fields: str) -> str:
    """Turn EventBridge's six cron fields into croniter's five.

    EventBridge adds a year, writes `?` for "any" in day-of-month or
    day-of-week, and numbers weekdays 1-7 from Sunday where cron uses 0-6.
    """
    fields = aws_fields.split()
    if len(fields) != 6:
        raise ValueError(f"cron({aws_fields}) needs six fields: minutes hours day-of-month month day-of-week year")
    minutes, hours, day_of_month, month, day_of_week, year = fields
    if year != "*":
        raise ValueError(f"cron({aws_fields}): only '*' is supported in the year field")
    expression = " ".join([minutes, hours, day_of_month, month, _cron_day_of_week(day_of_week)]).replace("?", "*")
    if not croniter.is_valid(expression):
        raise ValueError(f"unsupported cron expression cron({aws_fields})")
    return expression


def _cron_day_of_week(field: str) -> str:
    # "6L" (last Friday) is "L5" to croniter.
    field = re.sub(r"\b([1-7])L\b", lambda m: f"L{int(m.group(1)) - 1}", field)
    # Shift day numbers, but not the "3" of "6#3" (third) nor a step like "/2".
    return re.sub(r"(?<![#/L])\b([1-7])\b", lambda m: str(int(m.group(1)) - 1), field)


class ScheduleClock:
    """UTC wall-clock time that runs 1/scale times as fast as real time."""

    def __init__(self, scale: float = 1.0, real_seconds: Callable[[], float] = time.monotonic):
        if scale <= 0:
            raise ValueError(f"{SCALE_VARIABLE} must be positive, not {scale}")
        self.scale = scale
        self._real_seconds = real_seconds
        self._started_real = real_seconds()
        self._started_at = datetime.now(timezone.utc)

    def now(self) -> datetime:
        elapsed = (self._real_seconds() - self._started_real) / self.scale
        return self._started_at + timedelta(seconds=elapsed)

    def real_seconds_until(self, moment: datetime) -> float:
        return max(0.0, (moment - self.now()).total_seconds() * self.scale)


def schedule_scale(environ: Mapping[str, str]) -> float:
    return float(environ.get(SCALE_VARIABLE, "1.0"))


def scheduled_event(rule_name: str, region: str, fired_at: datetime) -> dict:
    """The event EventBridge passes to a scheduled rule's target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": EMULATED_ACCOUNT_ID,
        "time": fired_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{EMULATED_ACCOUNT_ID}:rule/{rule_name}"],
        "detail": {},
    }
