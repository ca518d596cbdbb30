"""Fair compute: submit numbers, dedupe them, and read them back (each caller's figures: callers/service.py).

Admission is the shared dispatcher's (admission/dispatcher.py) with
`origin="compute"`; the worker, retries, DLQ and the result ledger are the
same as for paced runs.
"""
from __future__ import annotations

import logging
import secrets
from typing import Sequence

from chalicelib.admission.service import Admission
from chalicelib.compute.models import Accepted, ComputeBacklogItem, ComputeRequest, ComputeView
from chalicelib.compute.store import ComputeStore
from chalicelib.core.errors import InvalidInput
from chalicelib.core.jobs import JobSpec
from chalicelib.core.times import iso
from chalicelib.core.validation import check_caller
from chalicelib.observability.logs import current_correlation_id, log_jobs

log = logging.getLogger(__name__)


def new_request_id() -> str:
    return "c-" + secrets.token_hex(8)


def check_number(raw: str, field: str, max_digits: int) -> str:
    """The number as canonical digits, or InvalidInput naming `field` and the problem."""
    def bad(message: str) -> InvalidInput:
        return InvalidInput(f"{field}: {message}", [{"field": field, "message": message}])

    if raw == "":
        raise bad("must not be empty")
    if raw[0] in "+-":
        raise bad("must not have a sign: give decimal digits only")
    if not (raw.isascii() and raw.isdigit()):
        raise bad("must be decimal digits only")
    if len(raw) > max_digits:
        raise bad(f"has {len(raw)} digits; the limit is {max_digits}")
    digits = raw.lstrip("0") or "0"
    if len(digits) < 2 and int(digits) < 2:
        raise bad("must be at least 2: 0 and 1 have no prime factorisation")
    return digits


def submit(store: ComputeStore, admission: Admission, caller: str | None, numbers: Sequence[str], max_digits: int,
           now: float, field: str = "number") -> list[Accepted]:
    """Validate every number first (a rejected request stores nothing), store one request each, then admit."""
    caller = check_caller(caller)
    fields = [field] if len(numbers) == 1 and field == "number" else [f"{field}.{i}" for i in range(len(numbers))]
    canonical = [check_number(raw, name, max_digits) for raw, name in zip(numbers, fields)]
    correlation_id = current_correlation_id()
    stored = store.submit_many([ComputeRequest(id=new_request_id(), caller=caller, number=number, owner=True,
                                               submitted_at=now, correlation_id=correlation_id)
                                for number in canonical], now)
    log_jobs(log, "compute requests stored", ((r.correlation_id, r.id) for r in stored), caller=caller,
             cached=[r.id for r in stored if not r.owner])
    # An owner's number was pending when it was claimed; a follower is answered from the number's record.
    accepted = [Accepted(id=r.id, status="pending" if r.owner else view(store, r).status) for r in stored]
    admission.request("compute")
    return accepted


def view(store: ComputeStore, request: ComputeRequest) -> ComputeView:
    record = store.number(request.number)
    status = record.status if record else "pending"
    finished = record.finished_at if record else None
    # A request for a number already done when it arrived finished when it arrived.
    if finished is not None and not request.owner:
        finished = max(finished, request.submitted_at)
    return ComputeView(
        id=request.id, caller=request.caller, number=request.number, status=status,
        factors=record.factors if record and status == "done" else [], cached=not request.owner,
        error=record.error if record else None, submitted_at=iso(request.submitted_at),
        admitted_at=iso(record.admitted_at if record and request.owner else None), finished_at=iso(finished),
        wait_s=None if finished is None else round(finished - request.submitted_at, 6),
    )


def get(store: ComputeStore, request_id: str) -> ComputeView | None:
    request = store.request(request_id)
    return view(store, request) if request else None


def compute_job_spec(item: ComputeBacklogItem) -> JobSpec:
    return JobSpec(id=item.id, number=item.number, submitted_at=item.submitted_at, correlation_id=item.correlation_id)
