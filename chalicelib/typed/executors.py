"""Typed jobs' executors: one payload model and one function per type, in one registry.

A type is registered with its payload model (a pydantic model) and the name
of the payload's main text field (what `q` searches, and where `#fail` asks
for a failure). The registry builds the request body model from what is
registered, a pydantic discriminated union on `type`, so adding a fourth type
is one model and one registered function:

    @REGISTRY.register("sms", SmsPayload, main_text="text")
    def send_sms(payload: SmsPayload) -> dict[str, Any]:
        return {"segments": 1 + len(payload.text) // 160}

The executors only simulate the work: each attempt sleeps the configured
latency (`PACER_EXECUTOR_LATENCY_S`) and returns a made-up receipt. Nothing is
sent anywhere. A payload whose main text contains `#fail` makes every attempt
raise, so demos and tests can watch retries end in `failed`.
"""
from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Callable, Literal, Union

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)

FAIL_MARKER = "#fail"


class Payload(BaseModel):
    # Strict like every request body: "3" is not 3, and unknown fields are named back.
    model_config = ConfigDict(extra="forbid", strict=True)


class NewJobBase(Payload):
    """What every typed job's request has besides `type` and `payload`."""

    priority: int = Field(default=3, ge=1, le=5, description="5 is the highest")
    # JSON carries times as strings: parsed here (strict mode would refuse any string). A naive time is refused.
    scheduled_for: AwareDatetime | None = Field(default=None, strict=False)
    target: Literal["lambda", "bot"] | None = Field(
        default=None, description="where it runs: `lambda` (Pacer's workers) or `bot` (claimed over HTTP); "
                                  "omitted, the type's default: `bot` for the stage's PACER_BOT_JOB_TYPES, else `lambda`")


class SimulatedFailure(RuntimeError):
    """The payload asked for this attempt to fail (its main text contains #fail)."""


class UnknownJobType(RuntimeError):
    """A message names a type no executor is registered for. Retrying cannot help."""

    permanent = True


# A practical address check: one @, no spaces, a dot in the domain. (email-validator would be stricter;
# it is not a dependency of the Lambda bundle, and nothing is ever sent to the address.)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def _email_address(value: str) -> str:
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("must be an email address like ann@example.com")
    return value


class EmailPayload(Payload):
    to: Annotated[str, AfterValidator(_email_address)]
    subject: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=10_000)


class DateRange(Payload):
    from_: date = Field(alias="from", strict=False)
    to: date = Field(strict=False)

    @model_validator(mode="after")
    def _ordered(self) -> "DateRange":
        if self.from_ > self.to:
            raise ValueError("from must not be after to")
        return self


class ReportPayload(Payload):
    report_type: str = Field(min_length=1, max_length=100)
    format: Literal["pdf", "csv"]
    date_range: DateRange


class NotificationPayload(Payload):
    user_id: str = Field(min_length=1, max_length=100)
    channel: Literal["push", "sms", "email"]
    message: str = Field(min_length=1, max_length=1000)


Executor = Callable[[Any], dict[str, Any]]  # takes its type's payload model


@dataclass(frozen=True)
class JobType:
    name: str
    payload: type[Payload]
    main_text: str  # the payload field `q` searches and `#fail` is looked for in
    execute: Executor
    example: dict[str, Any] | None = None  # a valid payload, for generated jobs (POST /api/jobs/populate)


class Registry:
    """The registered job types. The request model is rebuilt whenever a type is added or removed."""

    def __init__(self) -> None:
        self._types: dict[str, JobType] = {}
        self._lock = threading.Lock()
        self._adapter: TypeAdapter[Any] | None = None

    def register(self, name: str, payload: type[Payload], main_text: str,
                 example: dict[str, Any] | None = None) -> Callable[[Executor], Executor]:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", name):
            raise ValueError(f"job type {name!r}: use lower-case letters, digits and _")
        if main_text not in payload.model_fields:
            raise ValueError(f"job type {name!r}: {payload.__name__} has no field {main_text!r}")
        if example is not None:
            payload.model_validate(example)  # an example that does not fit its model fails here, not in a batch

        def add(execute: Executor) -> Executor:
            with self._lock:
                self._types[name] = JobType(name, payload, main_text, execute, example)
                self._adapter = None
            return execute

        return add

    def unregister(self, name: str) -> None:
        with self._lock:
            self._types.pop(name, None)
            self._adapter = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._types))

    def __contains__(self, name: object) -> bool:
        return name in self._types

    # Any: the request models are built at run time from what is registered, so no static type names them.
    def new_job_adapter(self) -> TypeAdapter[Any]:
        """The request body `{type, priority?, payload, scheduled_for?}`: a discriminated union on `type`."""
        with self._lock:
            if self._adapter is None:
                variants = [
                    create_model(f"New{kind.payload.__name__}Job", __base__=NewJobBase,
                                 type=(Literal[kind.name], ...), payload=(kind.payload, ...))
                    for kind in self._types.values()
                ]
                union = Union[tuple(variants)] if len(variants) > 1 else variants[0]
                self._adapter = TypeAdapter(Annotated[union, Field(discriminator="type")])
            return self._adapter

    def example(self, name: str, note: str) -> dict[str, Any] | None:
        """The type's example payload with `note` added to its main text (None if it registered none)."""
        kind = self._types.get(name)
        if kind is None or kind.example is None:
            return None
        return {**kind.example, kind.main_text: f"{kind.example[kind.main_text]} {note}"}

    def main_text(self, name: str, payload: dict[str, Any]) -> str:
        kind = self._types.get(name)
        return str(payload.get(kind.main_text, "")) if kind else ""

    def run(self, name: str, payload: dict[str, Any], latency_s: float = 0.0) -> dict[str, Any]:
        """Run one attempt: validate the payload again, simulate the latency, execute."""
        kind = self._types.get(name)
        if kind is None:
            raise UnknownJobType(f"no executor for job type {name!r}")
        try:
            model = kind.payload.model_validate(payload)
        except ValidationError as exc:
            # Validated when the job was created, so only a type's model changing under a stored job lands here.
            raise UnknownJobType(f"payload no longer fits {kind.payload.__name__}: {exc.errors()[0]['msg']}") from exc
        if latency_s > 0:
            time.sleep(latency_s)
        if FAIL_MARKER in self.main_text(name, payload):
            raise SimulatedFailure(f"the payload's {kind.main_text} asks for a failure ({FAIL_MARKER})")
        return kind.execute(model)


REGISTRY = Registry()


def _receipt(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


@REGISTRY.register("email", EmailPayload, main_text="subject",
                   example={"to": "ann@example.com", "subject": "Your weekly digest", "body": "Hello Ann"})
def send_email(payload: EmailPayload) -> dict[str, Any]:
    return {"simulated": True, "message_id": _receipt("msg"), "to": payload.to}


@REGISTRY.register("report", ReportPayload, main_text="report_type",
                   example={"report_type": "sales", "format": "csv",
                            "date_range": {"from": "2026-11-01", "to": "2026-11-30"}})
def build_report(payload: ReportPayload) -> dict[str, Any]:
    days = (payload.date_range.to - payload.date_range.from_).days + 1
    return {"simulated": True, "report_id": _receipt("rpt"), "format": payload.format, "days": days,
            "url": f"sim://reports/{payload.report_type}.{payload.format}"}


@REGISTRY.register("notification", NotificationPayload, main_text="message",
                   example={"user_id": "u-ann", "channel": "push", "message": "Your report is ready"})
def notify(payload: NotificationPayload) -> dict[str, Any]:
    return {"simulated": True, "notification_id": _receipt("ntf"), "channel": payload.channel,
            "user_id": payload.user_id}
