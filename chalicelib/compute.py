"""Fair compute: submit numbers, dedupe them, and admit them to the jobs queue round-robin across callers.

The backlog lives in DynamoDB, one partition per caller. `Dispatcher.dispatch`
(run on submit, when workers settle compute jobs, and by the 1-minute
watchdog) fills the free part of a bounded in-flight window, giving each
caller with a backlog an equal share and rotating who gets the remainder:
round robin with a quantum of the fair share. Jobs go out as `JobEnvelope`s
with `origin="compute"` on the one jobs queue, so the worker, retries, DLQ and
the result ledger are the same as for paced runs.
"""
from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from chalicelib.errors import InvalidInput, StaleWrite
from chalicelib.models import (Accepted, BacklogItem, CallerStats, Callers, ComputeRequest, ComputeView, JobEnvelope,
                               JobSpec, Origin, OutboundMessage)
from chalicelib.ports import ComputeStore, MessageQueue

MAX_CALLER_ID = 128
WAIT_SAMPLE = 1000  # the latest waits per caller that p50/p95 are taken over


def new_request_id() -> str:
    return "c-" + secrets.token_hex(8)


def check_caller(caller: str | None) -> str:
    caller = (caller or "").strip()
    if not caller:
        raise InvalidInput("X-Caller-ID: header is required", [{"field": "X-Caller-ID", "message": "missing"}])
    if len(caller) > MAX_CALLER_ID or not caller.isprintable() or "#" in caller:
        raise InvalidInput(f"X-Caller-ID: must be up to {MAX_CALLER_ID} printable characters without '#'",
                           [{"field": "X-Caller-ID", "message": "invalid"}])
    return caller


def check_number(raw: str, field: str, max_digits: int) -> str:
    """The number as canonical digits, or InvalidInput naming `field` and the problem."""
    def bad(message: str):
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


def submit(store: ComputeStore, caller: str, numbers: Sequence[str], max_digits: int, now: float,
           field: str = "number") -> list[Accepted]:
    """Validate every number first (a rejected request stores nothing), then store one request each."""
    caller = check_caller(caller)
    fields = [field] if len(numbers) == 1 and field == "number" else [f"{field}.{i}" for i in range(len(numbers))]
    canonical = [check_number(raw, name, max_digits) for raw, name in zip(numbers, fields)]
    stored = store.submit_many([ComputeRequest(id=new_request_id(), caller=caller, number=number, owner=True,
                                               submitted_at=now) for number in canonical], now)
    # An owner's number was pending when it was claimed; a follower is answered from the number's record.
    return [Accepted(id=r.id, status="pending" if r.owner else view(store, r).status) for r in stored]


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
        error=record.error if record else None, submitted_at=request.submitted_at,
        admitted_at=record.admitted_at if record and request.owner else None, finished_at=finished,
        wait_s=None if finished is None else round(finished - request.submitted_at, 6),
    )


def get(store: ComputeStore, request_id: str) -> ComputeView | None:
    request = store.request(request_id)
    return view(store, request) if request else None


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)], 6)


def callers(store: ComputeStore) -> Callers:
    stats = []
    for counts in sorted(store.callers(), key=lambda c: c.caller):
        waits = store.waits(counts.caller, WAIT_SAMPLE)
        stats.append(CallerStats(**counts.model_dump(), p50_wait_s=_percentile(waits, 0.5),
                                 p95_wait_s=_percentile(waits, 0.95)))
    return Callers(callers=stats)


def fair_shares(backlogs: dict[str, int], free: int, cursor: int,
                in_flight: dict[str, int] | None = None, quantum: int = 1) -> dict[str, int]:
    """Split `free` slots of the in-flight window across the callers with a backlog.

    Each `quantum` of slots (a message's worth) goes to the wanting caller
    with the fewest jobs in flight, counting the slots already given (ties
    rotate from `cursor`). With equal in-flight counts that is deficit round
    robin; a caller that has just arrived is first in line until it holds as
    many slots as the others: max-min fair shares of the window, so a
    newcomer waits for slots to free, not for a spiking caller's backlog.
    Whole quanta keep messages full: ten freed slots split five and five
    would cost two ledger transactions where one does.
    """
    order = sorted(caller for caller, backlog in backlogs.items() if backlog > 0)
    if not order:
        return {}
    start = cursor % len(order)
    order = order[start:] + order[:start]
    held = {caller: max(0, (in_flight or {}).get(caller, 0)) for caller in order}
    shares = dict.fromkeys(order, 0)
    left = max(0, free)
    while left > 0:
        wanting = [c for c in order if shares[c] < backlogs[c]]
        if not wanting:
            break
        chosen = min(wanting, key=lambda c: held[c] + shares[c])  # min keeps the first of equals: the rotation
        given = min(max(1, quantum), left, backlogs[chosen] - shares[chosen])
        shares[chosen] += given
        left -= given
    return {caller: share for caller, share in shares.items() if share}


def round_robin_chunks(chunks: dict[str, list[list[Any]]], order: list[str]):
    """(chunk, caller) pairs taking one chunk of each caller in turn, in `order`."""
    for turn in range(max((len(c) for c in chunks.values()), default=0)):
        for caller in order:
            if turn < len(chunks[caller]):
                yield chunks[caller][turn], caller


def compute_job_spec(item: BacklogItem) -> JobSpec:
    return JobSpec(id=item.id, number=item.number, submitted_at=item.submitted_at)


def always_ready(now: float) -> bool:
    return True


@dataclass
class Dispatcher:
    """Fair admission from per-caller backlogs in DynamoDB. Fair compute uses it as is; typed jobs
    (chalicelib/jobs.py) with `origin="task"`, their own store, and `ready` promoting due scheduled jobs
    and holding back while admission is paused."""

    store: ComputeStore
    jobs: MessageQueue
    max_in_flight: int
    jobs_per_message: int
    lease_s: float = 30.0
    resend_after_s: float = 60.0
    clock: Callable[[], float] = time.time
    origin: Origin = "compute"
    job_spec: Callable[[Any], JobSpec] = compute_job_spec  # a backlog item as the job its message carries
    ready: Callable[[float], bool] = always_ready  # called under the lease; False admits nothing this time
    max_passes: int = 8  # a bound on the passes one trigger makes for others (see dispatch)

    def dispatch(self, now: float) -> int:
        """Admit what fits in the in-flight window, fairly. Returns the jobs admitted (0 if another dispatcher ran).

        A trigger that finds the lease held is not lost: it asks the holder to
        go round once more, so slots freed during a pass are filled. The
        holder goes round at most `max_passes` times: under a steady stream of
        submits someone always asks, and the holder (an HTTP request) would
        never answer. What asks during the last pass waits for the next
        trigger, which under such a stream comes at once (and the watchdog
        comes within a minute).
        """
        holder = secrets.token_hex(8)
        cursor = self.store.take_lease(holder, now, self.lease_s)
        if cursor is None:
            return 0
        admitted = 0
        for passes in range(1, self.max_passes + 1):
            try:
                admitted += self._admit_once(now, cursor)
            except BaseException:
                self.store.release_lease(holder, cursor + 1, now, self.lease_s, final=True)
                raise
            cursor += 1
            now = self.clock()
            if self.store.release_lease(holder, cursor, now, self.lease_s, final=passes == self.max_passes):
                break
        return admitted

    def _admit_once(self, now: float, cursor: int) -> int:
        self._resend_stale_outbox(now)
        if not self.ready(now):
            return 0
        counts = self.store.callers()
        held = {c.caller: c.in_flight for c in counts}
        free = self.max_in_flight - sum(max(0, n) for n in held.values())
        shares = fair_shares({c.caller: c.backlog for c in counts}, free, cursor, held, self.jobs_per_message)
        chunks: dict[str, list[list[Any]]] = {}
        for caller, share in shares.items():
            items = self.store.backlog(caller, share)
            chunks[caller] = [items[i : i + self.jobs_per_message] for i in range(0, len(items), self.jobs_per_message)]
        # Interleaved, the caller holding the fewest slots first: a worker takes a batch's messages in
        # turn, so a newcomer's message is not queued behind a whole share of a spiking caller's.
        queue_order = sorted(chunks, key=lambda caller: max(0, held.get(caller, 0)))
        admitted = 0
        sent: list[str] = []
        messages: list[OutboundMessage] = []
        for chunk, caller in round_robin_chunks(chunks, queue_order):
            body = JobEnvelope(origin=self.origin, run_id=caller,
                               jobs=[self.job_spec(item) for item in chunk]).model_dump_json()
            try:
                sent.append(self.store.admit(caller, chunk, body, now))
            except StaleWrite:
                continue  # admitted by a dispatcher whose lease ran out under it; it sends them
            messages.append(OutboundMessage(body=body, group_id=caller))
            admitted += len(chunk)
        if messages:
            self.jobs.send(messages)
            self.store.forget_outbox(sent)
        return admitted

    def _resend_stale_outbox(self, now: float) -> None:
        # A dispatcher that crashed between admitting and sending left these; the ledger
        # records each job once, so sending one twice is harmless.
        stale = self.store.outbox(now - self.resend_after_s)
        if stale:
            self.jobs.send([OutboundMessage(body=body, group_id=JobEnvelope.model_validate_json(body).run_id)
                            for _, body in stale])
            self.store.forget_outbox([key for key, _ in stale])
