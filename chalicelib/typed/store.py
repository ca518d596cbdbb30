"""Typed jobs' store port."""
from __future__ import annotations

import builtins
from typing import AbstractSet, Protocol, Sequence

from chalicelib.admission.store import AdmissionStore
from chalicelib.callers.store import CallerFigures
from chalicelib.typed.listing import ListPlan
from chalicelib.typed.models import TypedBacklogItem, TypedJob, TypedJobStats


class TypedJobStore(AdmissionStore[TypedBacklogItem], CallerFigures, Protocol):
    """Typed jobs: the job items, the schedule and per-caller backlogs, admission's lease and outbox, the counters,
    each caller's settled-job sample.

    Every status change is one conditional write (or transaction) that also appends to the job's timeline and
    moves the stats counters; each raises StaleWrite when its condition fails.
    """

    def create(self, job: TypedJob, main_text: str, idempotency: tuple[str, str, str] | None, now: float) -> TypedJob:
        """Store a new pending job in the schedule or its caller's backlog, with its claim (caller, key, body hash)
        on an Idempotency-Key in the same transaction. Raises DuplicateRequest if the key was claimed already."""

    def get(self, job_id: str) -> TypedJob | None: ...

    # Below this method, `list` in the class body names it, not the builtin: later annotations say builtins.list.
    def list(self, plan: "ListPlan", start: dict[str, str] | None, limit: int) -> tuple[list[TypedJob], bool]:
        """Up to `limit` jobs of the plan's listing after `start` (index keys), and whether more follow."""

    def cancel(self, job: TypedJob, now: float) -> None:
        """pending -> cancelled, and out of the schedule, the backlog or the in-flight count, as `job.place` says.
        Raises StaleWrite unless the job is still pending in that place."""

    def start(self, job_id: str, attempt: int, worker: str, now: float) -> None:
        """pending (admitted, `attempt - 1` attempts so far) -> running. Raises StaleWrite otherwise."""

    def start_many(self, attempts: Sequence[tuple[str, int]], worker: str, now: float) -> builtins.set[str]:
        """`start` for each (job id, attempt) of a message at once (one transaction); the ids that started."""

    def take_over(self, job_id: str, attempt: int, worker: str, now: float, started_before: float) -> None:
        """Restart a running attempt whose worker did not settle it in time (started before `started_before`)."""

    def requeue(self, job_id: str, attempt: int, worker: str, note: str, now: float) -> None:
        """running (this attempt) -> pending, waiting for its retry message."""

    def retry(self, job: TypedJob, now: float) -> None:
        """failed -> pending, attempts from 0, back in the backlog; its failed result item is removed."""

    def stats(self, since_minute: int, until_minute: int) -> TypedJobStats: ...

    def paused(self) -> bool:
        """The admin's pause switch. It is kept on the admission lease's item, so each pass learns it with the
        lease (Lease.paused) and admits nothing while it is on."""
        ...

    def set_paused(self, paused: bool, now: float) -> None: ...

    def take_populate_turn(self, now: float, next_at: float) -> bool:
        """The populate schedule's turn: True for exactly one caller once the last turn's `next_at` has come (or
        on the first turn), which moves it to `next_at`; False otherwise."""
        ...

    # Admission (the shared Dispatcher drives the rest of AdmissionStore, as for fair compute).
    def promote_due(self, now: float, limit: int) -> int:
        """Move up to `limit` scheduled jobs that are due, earliest first, into their callers' backlogs (a bot
        job's into the bots'). Returns how many it found due: `limit` means more may be. Safe beside another
        promoter: each move is conditional on the job still waiting for its time."""
        ...

    def due_by(self, until: float, limit: int) -> builtins.list[float]:
        """When the scheduled jobs due by `until` fall due, earliest first (at most `limit`)."""
        ...

    def backlog(self, caller: str, limit: int, skip: AbstractSet[str] = frozenset()) -> builtins.list[TypedBacklogItem]:
        """The caller's next jobs: highest priority first, then the oldest; none of a type whose limit key
        (`type:<type>`) is in `skip`."""
        ...
