"""The ports services depend on. Adapters implement them for DynamoDB/SQS and in memory."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, Sequence

from chalicelib.models import (BacklogItem, CallerCounts, ComputeRequest, JobOutcome, NumberRecord, OutboundMessage, Run,
                               Slice, TaskBacklogItem, TaskJob, TaskStats, ThroughputBucket)

if TYPE_CHECKING:
    from chalicelib.jobs import ListPlan


class RunRepository(Protocol):
    def current(self) -> Run | None:
        """The run the current-run pointer names, or None before the first run."""

    def get(self, run_id: str) -> Run | None: ...

    def create_current(self, run: Run) -> None:
        """Store `run` and point the current-run pointer at it.

        Raises RunAlreadyActive if the current run is still active.
        """

    def change_rate(self, run: Run, *, x: int, y: float, anchor_at: float, now: float) -> None:
        """Re-anchor the schedule at `run.enqueued` with a new rate.

        Raises StaleWrite unless the run is still running with the same `enqueued` as `run`.
        """

    def stop(self, run: Run, now: float) -> None:
        """Raises StaleWrite unless the run is still running."""

    def advance(self, run: Run, *, end: int, next_token: str, now: float) -> None:
        """Claim jobs [run.enqueued, end), record them as an outbox slice, and pass the clock on.

        Raises StaleWrite unless `run.tick_token` still holds the clock, the
        run is still running, nobody else moved `enqueued` and the rate was
        not changed since `run` was read.
        """

    def replace_token(self, run: Run, *, next_token: str, now: float) -> None:
        """Hand the clock to a new tick (restarting a chain). Raises StaleWrite on a race."""

    def slices(self, run_id: str) -> list[Slice]: ...

    def forget_slice(self, run_id: str, start: int) -> None: ...

    def throughput(self, run_id: str, since: int, until: int) -> list[ThroughputBucket]:
        """Per-second buckets in [since, until], oldest first; seconds with no activity are absent."""


class ResultLedger(Protocol):
    def record(self, outcomes: Sequence[JobOutcome], now: float) -> int:
        """Store each outcome once, keyed by job id, and move the run's counters by exactly that much.

        Outcomes whose job already has one are skipped. Returns how many were new.
        """


class MessageQueue(Protocol):
    def send(self, messages: Sequence[OutboundMessage]) -> None: ...

    def delay_redelivery(self, delays: Sequence[tuple[str, int]]) -> None:
        """Hold received messages (by receipt handle) back for the given seconds."""


class ComputeStore(Protocol):
    """Fair compute's state: requests, one record per number, per-caller backlogs and the dispatch outbox."""

    def submit(self, request: ComputeRequest, now: float) -> ComputeRequest:
        """Store the request. The first request for a number claims it (conditionally) and joins its caller's
        backlog; any later one is stored with `owner=False` and is answered from the number's record."""

    def submit_many(self, requests: Sequence[ComputeRequest], now: float) -> list[ComputeRequest]:
        """`submit` for each, in order, in as few writes as the store allows."""

    def request(self, request_id: str) -> ComputeRequest | None: ...

    def number(self, number: str) -> NumberRecord | None: ...

    def callers(self) -> list[CallerCounts]: ...

    def waits(self, caller: str, limit: int) -> list[float]:
        """The latest `limit` waits (submitted to finished) of the caller's computed requests."""

    def backlog(self, caller: str, limit: int) -> list[BacklogItem]:
        """The caller's oldest backlog items."""

    def take_lease(self, holder: str, now: float, ttl_s: float) -> int | None:
        """Become the one dispatcher until now + ttl_s. Returns the round-robin cursor, or None if it is held;
        then the holder is asked to go round again (see release_lease)."""

    def release_lease(self, holder: str, cursor: int, now: float, ttl_s: float, final: bool = False) -> bool:
        """Store the cursor and let the lease go; True. If another dispatcher asked meanwhile (and not `final`),
        keep it until now + ttl_s, clear the request, and return False: the holder runs another pass."""

    def admit(self, caller: str, items: Sequence[BacklogItem], body: str, now: float) -> str:
        """Move items from the backlog to in flight, with their message in the outbox (one transaction).

        Raises StaleWrite if any item left the backlog already. Returns the outbox key.
        """

    def outbox(self, created_before: float) -> list[tuple[str, str]]:
        """(key, body) of admitted messages not yet known to be sent."""

    def forget_outbox(self, keys: Sequence[str]) -> None: ...


class TaskStore(Protocol):
    """Typed jobs: the job items, the schedule and per-caller backlogs, admission's lease and outbox, the counters.

    Every status change is one conditional write (or transaction) that also appends to the job's timeline and
    moves the stats counters; each raises StaleWrite when its condition fails.
    """

    def create(self, job: TaskJob, main_text: str, idempotency: tuple[str, str, str] | None, now: float) -> TaskJob:
        """Store a new pending job in the schedule or its caller's backlog, with its claim (caller, key, body hash)
        on an Idempotency-Key in the same transaction. Raises DuplicateRequest if the key was claimed already."""

    def get(self, job_id: str) -> TaskJob | None: ...

    def list(self, plan: "ListPlan", start: dict[str, str] | None, limit: int) -> tuple[list[TaskJob], bool]:
        """Up to `limit` jobs of the plan's listing after `start` (index keys), and whether more follow."""

    def cancel(self, job: TaskJob, now: float) -> None:
        """pending -> cancelled, and out of the schedule, the backlog or the in-flight count, as `job.place` says.
        Raises StaleWrite unless the job is still pending in that place."""

    def start(self, job_id: str, attempt: int, worker: str, now: float) -> None:
        """pending (admitted, `attempt - 1` attempts so far) -> running. Raises StaleWrite otherwise."""

    def take_over(self, job_id: str, attempt: int, worker: str, now: float, started_before: float) -> None:
        """Restart a running attempt whose worker did not settle it in time (started before `started_before`)."""

    def requeue(self, job_id: str, attempt: int, worker: str, note: str, now: float) -> None:
        """running (this attempt) -> pending, waiting for its retry message."""

    def retry(self, job: TaskJob, now: float) -> None:
        """failed -> pending, attempts from 0, back in the backlog; its failed result item is removed."""

    def stats(self, since_minute: int, until_minute: int) -> TaskStats: ...

    def paused(self) -> bool: ...

    def set_paused(self, paused: bool, now: float) -> None: ...

    # Admission (compute.Dispatcher drives these, as for fair compute).
    def prepare_admission(self, now: float) -> bool:
        """Move scheduled jobs that are due into their callers' backlogs; False while admission is paused."""

    def due_by(self, until: float, limit: int) -> list[float]:
        """When the scheduled jobs due by `until` fall due, earliest first (at most `limit`)."""

    def callers(self) -> list[CallerCounts]: ...

    def backlog(self, caller: str, limit: int) -> list[TaskBacklogItem]:
        """The caller's next jobs: highest priority first, then the oldest."""

    def admit(self, caller: str, items: Sequence[TaskBacklogItem], body: str, now: float) -> str: ...

    def take_lease(self, holder: str, now: float, ttl_s: float) -> int | None: ...

    def release_lease(self, holder: str, cursor: int, now: float, ttl_s: float, final: bool = False) -> bool: ...

    def outbox(self, created_before: float) -> list[tuple[str, str]]: ...

    def forget_outbox(self, keys: Sequence[str]) -> None: ...
