"""One error hierarchy for the domain, and the one body every error answer has. `app.py` maps these to HTTP in
one place."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class PacerError(Exception):
    """Base of every error Pacer raises on purpose."""

    code = "error"


class InvalidInput(PacerError):
    """A request that does not fit its model. Nothing was stored."""

    code = "validation_error"

    def __init__(self, message: str, fields: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.fields = fields or []


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"


class NotFound(PacerError):
    code = "not_found"


class Unauthenticated(PacerError):
    """No credentials were given for an endpoint that needs them."""

    code = "unauthenticated"


class Forbidden(PacerError):
    """Credentials were given but do not grant this."""

    code = "forbidden"


class Conflict(PacerError):
    """The request is valid but the current state forbids it."""

    code = "conflict"


class RunAlreadyActive(Conflict):
    pass


class NoActiveRun(Conflict):
    pass


class HoldsMaxJobs(Conflict):
    """A bot claimed while it holds as many jobs as it may (one, unless it registered for more)."""


class RateLimited(Conflict):
    """A bot's claim found the slots of a rate limit in this second taken: `keys` names the limits (admission's
    limit keys) that held it back."""

    def __init__(self, message: str, keys: frozenset[str]):
        super().__init__(message)
        self.keys = keys


class StaleWrite(PacerError):
    """A conditional write lost a race: what it was based on has changed.

    Services catch this and either retry from a fresh read or step aside,
    because someone else did the work. `reasons` are DynamoDB's cancellation
    reasons of a transaction, one per item, where the write was one; `item`
    is the item as the condition found it, where the write asked for it
    (DynamoDB's ReturnValuesOnConditionCheckFailure, still encoded).
    """

    code = "stale_write"

    def __init__(self, message: str, reasons: list[str] | None = None, item: dict[str, Any] | None = None):
        super().__init__(message)
        self.reasons = reasons or []
        self.item = item


class DependencyUnavailable(PacerError):
    """An AWS dependency failed in a way the caller cannot fix."""

    code = "dependency_unavailable"


class Contended(DependencyUnavailable):
    """An AWS dependency refused for now (a transaction conflict, throttling): a retry with backoff may succeed."""

    code = "contended"

    def __init__(self, message: str, reasons: list[str] | None = None):
        super().__init__(message)
        self.reasons = reasons or []


class DuplicateRequest(Conflict):
    """An Idempotency-Key was used before: the job it created, and the hash of the body that created it."""

    code = "duplicate_request"

    def __init__(self, job_id: str, body_hash: str):
        super().__init__(f"this Idempotency-Key created job {job_id}")
        self.job_id = job_id
        self.body_hash = body_hash


class FieldError(BaseModel):
    field: str = Field(description="the field, parameter or header at fault: `payload.to`, `limit`, `X-Caller-ID`")
    message: str


class ErrorBody(BaseModel):
    """What every error answer carries: the error's `code`, a message naming the problem, and for bad input each
    field at fault."""

    error: str = Field(description="a PacerError code: validation_error, payload_too_large, not_found, conflict, ...")
    message: str
    fields: list[FieldError] | None = Field(default=None, description="only for bad input; absent otherwise")
