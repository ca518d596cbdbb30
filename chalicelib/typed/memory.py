"""Typed jobs' in-memory twin: the same conditions on each status change, checked under one lock."""
from __future__ import annotations

import builtins
from typing import AbstractSet, Any, Callable, Sequence, cast

from chalicelib.admission.memory import MemoryDispatchCoordination
from chalicelib.admission.models import CallerCounts, held_types
from chalicelib.callers.models import Settled
from chalicelib.core.errors import DuplicateRequest, StaleWrite
from chalicelib.core.jobs import JobOutcome
from chalicelib.typed.keys import backlog_item, backlog_key, listing_attributes
from chalicelib.typed.listing import ListPlan
from chalicelib.typed.models import TimelineEntry, TypedBacklogItem, TypedJob, TypedJobStats, TypedJobStatus
from chalicelib.typed.store import TypedJobStore


class MemoryTypedJobStore(MemoryDispatchCoordination, TypedJobStore):
    """DynamoTypedJobStore's twin: the same conditions on each status change, checked under one lock."""

    def __init__(self, results: dict[str, JobOutcome] | None = None) -> None:
        super().__init__()
        self.results: dict[str, JobOutcome] = {} if results is None else results  # the ledger's, when shared
        self.jobs: dict[str, TypedJob] = {}
        self.main_texts: dict[str, str] = {}
        self.schedule: dict[str, TypedBacklogItem] = {}  # job id -> item waiting for its time
        self.backlogs: dict[str, dict[str, TypedBacklogItem]] = {}  # caller -> backlog key -> item
        self.claims: dict[tuple[str, str], tuple[str, str, float]] = {}  # (caller, key) -> job id, body hash, expiry
        self.by_status: dict[str, int] = {}
        self.by_type: dict[str, int] = {}
        self.total = 0
        self.minutes: dict[int, tuple[int, int]] = {}
        self.populate_next_at: float | None = None  # the populate schedule's next turn
        self.settled_log: dict[str, builtins.list[Settled]] = {}  # caller -> settled jobs, as recorded
        # Bot jobs (chalicelib/bots/): their own backlogs and caller counts (BQ#, BCALLERS), which admission never
        # reads; the bots' twin (bots/memory.py) claims from them under this store's lock.
        self.bot_backlogs: dict[str, dict[str, TypedBacklogItem]] = {}
        self.bot_counts: dict[str, CallerCounts] = {}

    # -- helpers: each status change checks its condition, then changes the job, its place and the counters --

    def _move_status(self, **deltas: int) -> None:
        for status, delta in deltas.items():
            self.by_status[status] = self.by_status.get(status, 0) + delta

    def _change(self, job_id: str, condition: Callable[[TypedJob], bool], entry: TimelineEntry | None = None,
                **changes: Any) -> TypedJob:
        job = self.jobs.get(job_id)
        if job is None or not condition(job):
            raise StaleWrite(f"job {job_id} changed")
        timeline = job.timeline + ([entry] if entry else [])
        self.jobs[job_id] = job.model_copy(update={**changes, "timeline": timeline})
        return self.jobs[job_id]

    def _backlogs(self, item: TypedBacklogItem) -> dict[str, dict[str, TypedBacklogItem]]:
        return self.bot_backlogs if item.target == "bot" else self.backlogs

    def caller_counts(self, caller: str, target: str = "lambda") -> CallerCounts:
        """A caller's counts: admission's, or for bot jobs the bots' (as TCALLERS and BCALLERS)."""
        if target == "bot":
            return self.bot_counts.setdefault(caller, CallerCounts(caller=caller))
        return self._count(caller)

    def _enqueue(self, item: TypedBacklogItem) -> None:
        self._backlogs(item).setdefault(item.caller, {})[backlog_key(item)] = item
        self.caller_counts(item.caller, item.target).backlog += 1

    def _attributes(self, job: TypedJob) -> dict[str, Any]:
        return {**job.model_dump(), **listing_attributes(job, self.main_texts[job.id])}

    # -- job items --

    def create(self, job: TypedJob, main_text: str, idempotency: tuple[str, str, str] | None, now: float) -> TypedJob:
        with self.lock:
            if idempotency is not None:
                caller, key, body_hash = idempotency
                claimed = self.claims.get((caller, key))
                if claimed is not None and claimed[2] >= now:
                    raise DuplicateRequest(claimed[0], claimed[1])
                self.claims[(caller, key)] = (job.id, body_hash, now + 24 * 3600)
            self.jobs[job.id] = job.model_copy()
            self.main_texts[job.id] = main_text
            if job.place == "scheduled":
                self.schedule[job.id] = backlog_item(job)
            else:
                self._enqueue(backlog_item(job))
            self._move_status(pending=1)
            self.by_type[job.type] = self.by_type.get(job.type, 0) + 1
            self.total += 1
            return job.model_copy()

    def get(self, job_id: str) -> TypedJob | None:
        with self.lock:
            found = self.jobs.get(job_id)
            return found.model_copy() if found else None

    # Below this method, `list` in the class body names it, not the builtin: later annotations say builtins.list.
    def list(self, plan: ListPlan, start: dict[str, str] | None, limit: int) -> tuple[list[TypedJob], bool]:
        with self.lock:
            rows = [(attributes[plan.range_attribute], job) for job in self.jobs.values()
                    if plan.matches(attributes := self._attributes(job))]
        rows.sort(key=lambda row: row[0], reverse=not plan.forward)
        if start is not None:
            after = start[plan.range_attribute]
            rows = [row for row in rows if (row[0] > after if plan.forward else row[0] < after)]
        return [job.model_copy() for _, job in rows[:limit]], len(rows) > limit

    # -- status changes --

    def cancel(self, job: TypedJob, now: float) -> None:
        with self.lock:
            self._change(job.id, lambda s: s.status == "pending" and s.place == job.place,
                         TimelineEntry(status="cancelled", at=now, attempt=job.attempts, note="cancelled"),
                         status="cancelled", place="none", finished_at=now)
            if job.place == "queued":
                item = backlog_item(job)
                del self._backlogs(item)[job.caller][backlog_key(item)]
                self.caller_counts(job.caller, job.target).backlog -= 1
            elif job.place == "scheduled":
                del self.schedule[job.id]
            elif job.place == "admitted":
                self._count(job.caller).in_flight -= 1
            self._move_status(pending=-1, cancelled=1)

    def start(self, job_id: str, attempt: int, worker: str, now: float) -> None:
        if not self.start_many([(job_id, attempt)], worker, now):
            raise StaleWrite(f"job {job_id} is not pending admitted at attempt {attempt - 1}")

    def start_many(self, attempts: Sequence[tuple[str, int]], worker: str, now: float) -> builtins.set[str]:
        started = set()
        with self.lock:
            for job_id, attempt in attempts:
                try:
                    self._change(job_id, lambda s: s.status == "pending" and s.place == "admitted"
                                 and s.attempts == attempt - 1,
                                 TimelineEntry(status="running", at=now, worker=worker, attempt=attempt),
                                 status="running", place="none", attempts=attempt, started_at=now)
                except StaleWrite:
                    continue
                self._move_status(pending=-1, running=1)
                started.add(job_id)
        return started

    def take_over(self, job_id: str, attempt: int, worker: str, now: float, started_before: float) -> None:
        with self.lock:
            self._change(job_id, lambda s: s.status == "running" and s.attempts == attempt
                         and (s.started_at or 0) < started_before,
                         TimelineEntry(status="running", at=now, worker=worker, attempt=attempt,
                                       note="restarted: the worker that started this attempt did not settle it in time"),
                         started_at=now)

    def requeue(self, job_id: str, attempt: int, worker: str, note: str, now: float) -> None:
        with self.lock:
            self._change(job_id, lambda s: s.status == "running" and s.attempts == attempt,
                         TimelineEntry(status="pending", at=now, worker=worker, attempt=attempt, note=note),
                         status="pending", place="admitted", error=note)
            self._move_status(running=-1, pending=1)

    def retry(self, job: TypedJob, now: float) -> None:
        with self.lock:
            requeued = self._change(job.id, lambda s: s.status == "failed",
                                    TimelineEntry(status="pending", at=now, attempt=0, note="retried by admin"),
                                    status="pending", place="queued", attempts=0, error=None, result=None,
                                    started_at=None, finished_at=None)
            self._enqueue(backlog_item(requeued))
            self.results.pop(job.id, None)  # the failed outcome goes, so the ledger records the next one
            self._move_status(failed=-1, pending=1)

    def settle(self, outcome: JobOutcome, now: float) -> bool:
        """What the ledger does for a typed job's outcome; False if that attempt is no longer the running one.
        Throughput counts it in the minute it is recorded, as DynamoDB's settlement does."""
        final: TypedJobStatus = "completed" if outcome.outcome == "done" else "failed"
        with self.lock:
            try:
                job = self._change(
                    outcome.job_id, lambda s: s.status == "running" and s.attempts == outcome.attempt,
                    TimelineEntry(status=final, at=outcome.finished_at, worker=outcome.worker, attempt=outcome.attempt,
                                  note=None if final == "completed" else (outcome.error or "")[:500]),
                    status=final, place="none", finished_at=outcome.finished_at,
                    result=(outcome.result or {}) if final == "completed" else None,
                    error=None if final == "completed" else (outcome.error or "failed"))
            except StaleWrite:
                return False
            counts = self.caller_counts(job.caller, job.target)
            counts.in_flight -= 1
            if final == "completed":
                counts.done += 1
            else:
                counts.failed += 1
            self.settled_log.setdefault(job.caller, []).append(Settled.of(outcome))
            self._move_status(running=-1, **{final: 1})
            minute = int(now) // 60 * 60
            done, failed = self.minutes.get(minute, (0, 0))
            self.minutes[minute] = (done + (final == "completed"), failed + (final == "failed"))
            return True

    def stats(self, since_minute: int, until_minute: int) -> TypedJobStats:
        with self.lock:
            return TypedJobStats(by_status=dict(self.by_status), by_type=dict(self.by_type), total=self.total,
                             minutes={m: c for m, c in self.minutes.items() if since_minute <= m <= until_minute})

    # -- admission --

    def take_populate_turn(self, now: float, next_at: float) -> bool:
        with self.lock:
            if self.populate_next_at is not None and self.populate_next_at > now:
                return False
            self.populate_next_at = next_at
            return True

    def promote_due(self, now: float, limit: int) -> int:
        with self.lock:
            # An item in the schedule always has its due time (backlog_item sets it for a scheduled job).
            due = sorted((item for item in self.schedule.values() if (item.due or 0) <= now),
                         key=lambda i: cast(float, i.due))[:limit]
            for item in due:
                self._change(item.id, lambda s: s.status == "pending" and s.place == "scheduled", place="queued")
                del self.schedule[item.id]
                self._enqueue(item.model_copy(update={"due": None}))
            return len(due)

    def due_by(self, until: float, limit: int) -> builtins.list[float]:
        with self.lock:
            return sorted(cast(float, item.due) for item in self.schedule.values() if (item.due or 0) <= until)[:limit]

    def backlog(self, caller: str, limit: int, skip: AbstractSet[str] = frozenset()) -> builtins.list[TypedBacklogItem]:
        held = set(held_types(skip))
        with self.lock:
            backlog = self.backlogs.get(caller, {})
            waiting = [backlog[key] for key in sorted(backlog) if backlog[key].type not in held]
            return [item.model_copy() for item in waiting[:max(0, limit)]]

    def settled(self, caller: str, limit: int) -> builtins.list[Settled]:
        with self.lock:
            return sorted(self.settled_log.get(caller, []), key=lambda s: s.finished_at, reverse=True)[:limit]

    def admit(self, caller: str, items: Sequence[TypedBacklogItem], body: str, now: float) -> str:
        with self.lock:
            backlog = self.backlogs.get(caller, {})
            if any(backlog_key(item) not in backlog or self.jobs[item.id].place != "queued" for item in items):
                raise StaleWrite("a backlog item was admitted or cancelled already")
            for item in items:
                del backlog[backlog_key(item)]
                self._change(item.id, lambda s: s.status == "pending" and s.place == "queued", place="admitted")
            counts = self._count(caller)
            counts.backlog -= len(items)
            counts.in_flight += len(items)
            key = f"OUT#{items[0].id}"
            self.pending_sends[key] = (now, body)
            return key
