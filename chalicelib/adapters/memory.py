"""In-memory twins of the adapters, for unit tests and the contract suite.

They keep the same conditions as the DynamoDB adapters (the contract suite
runs both), under one lock instead of DynamoDB's item-level atomicity.
"""
from __future__ import annotations

import threading
from typing import Sequence

from chalicelib.errors import DuplicateRequest, RunAlreadyActive, StaleWrite
from chalicelib.jobs import backlog_item, backlog_key, listing_attributes
from chalicelib.models import (BacklogItem, CallerCounts, ComputeRequest, DeadLetter, JobOutcome, NumberRecord,
                               OutboundMessage, Run, Slice, TaskBacklogItem, TaskJob, TaskStats, ThroughputBucket,
                               TimelineEntry, WorkerBeat)


class MemoryRunRepository:
    def __init__(self):
        self.lock = threading.RLock()
        self.runs: dict[str, Run] = {}
        self.current_id: str | None = None
        self.outbox: dict[tuple[str, int], Slice] = {}
        self.buckets: dict[tuple[str, int], ThroughputBucket] = {}

    def current(self) -> Run | None:
        with self.lock:
            return self.get(self.current_id) if self.current_id else None

    def get(self, run_id: str) -> Run | None:
        with self.lock:
            run = self.runs.get(run_id)
            return run.model_copy() if run else None

    def create_current(self, run: Run) -> None:
        with self.lock:
            previous = self.current()
            if previous is not None and previous.active:
                raise RunAlreadyActive(f"run {previous.run_id} is still running; stop it first (POST /api/stop)")
            self.runs[run.run_id] = run.model_copy()
            self.current_id = run.run_id

    def _update_if(self, run: Run, condition, **changes) -> None:
        with self.lock:
            stored = self.runs.get(run.run_id)
            if stored is None or not condition(stored):
                raise StaleWrite(f"run {run.run_id} changed")
            self.runs[run.run_id] = stored.model_copy(update=changes)

    def _holds_clock(self, seen: Run):
        return lambda stored: (
            stored.state == "running" and stored.tick_token == seen.tick_token and stored.enqueued == seen.enqueued
            and stored.anchor_at == seen.anchor_at
        )

    def change_rate(self, run: Run, *, x: int, y: float, anchor_at: float, now: float) -> None:
        self._update_if(
            run, lambda s: s.state == "running" and s.enqueued == run.enqueued, x=x, y=y, anchor_at=anchor_at,
            anchor_index=run.enqueued, updated_at=now,
        )

    def stop(self, run: Run, now: float) -> None:
        self._update_if(
            run, lambda stored: stored.state == "running", state="stopped", stopped_at=now, updated_at=now, tick_token=""
        )

    def advance(self, run: Run, *, end: int, next_token: str, now: float) -> None:
        with self.lock:
            if end <= run.enqueued:
                self._update_if(run, self._holds_clock(run), tick_token=next_token, tick_at=now)
                return
            self._update_if(run, self._holds_clock(run), enqueued=end, tick_token=next_token, tick_at=now, updated_at=now)
            self.outbox[(run.run_id, run.enqueued)] = Slice(run_id=run.run_id, start=run.enqueued, end=end, created_at=now)
            self._add_to_bucket(run.run_id, now, enqueued=end - run.enqueued)

    def replace_token(self, run: Run, *, next_token: str, now: float) -> None:
        self._update_if(
            run, lambda s: s.state == "running" and s.tick_token == run.tick_token, tick_token=next_token, tick_at=now
        )

    def slices(self, run_id: str) -> list[Slice]:
        with self.lock:
            return sorted((s for (rid, _), s in self.outbox.items() if rid == run_id), key=lambda s: s.start)

    def forget_slice(self, run_id: str, start: int) -> None:
        with self.lock:
            self.outbox.pop((run_id, start), None)

    def throughput(self, run_id: str, since: int, until: int) -> list[ThroughputBucket]:
        with self.lock:
            return [b.model_copy() for (rid, t), b in sorted(self.buckets.items()) if rid == run_id and since <= t <= until]

    def _add_to_bucket(self, run_id: str, now: float, **counts: int) -> None:
        key = (run_id, int(now))
        bucket = self.buckets.setdefault(key, ThroughputBucket(t=int(now)))
        for name, count in counts.items():
            setattr(bucket, name, getattr(bucket, name) + count)


class MemoryResultLedger:
    def __init__(self, runs: MemoryRunRepository, compute: "MemoryComputeStore | None" = None,
                 tasks: "MemoryTaskStore | None" = None):
        self.runs = runs
        self.compute = compute
        self.tasks = tasks
        self.outcomes: dict[str, JobOutcome] = {}

    def _is_new(self, outcome: JobOutcome, now: float) -> bool:
        # A typed job settles only from its running attempt (as DynamoDB's condition says); an admin retry
        # removes its failed outcome, so its next outcome is new again.
        if outcome.origin == "task":
            return self.tasks is not None and self.tasks.settle(outcome, now)
        return outcome.job_id not in self.outcomes

    def record(self, outcomes: Sequence[JobOutcome], now: float) -> int:
        with self.runs.lock:
            new = [o for o in outcomes if self._is_new(o, now)]
            for outcome in new:
                self.outcomes[outcome.job_id] = outcome
                if outcome.origin == "compute":
                    if self.compute is not None:
                        self.compute.settle(outcome)
                    continue
                if outcome.origin == "task":
                    continue
                done, failed = (1, 0) if outcome.outcome == "done" else (0, 1)
                run = self.runs.runs.get(outcome.run_id)
                if run is not None:
                    self.runs.runs[outcome.run_id] = run.model_copy(
                        update={"processed": run.processed + done, "failed": run.failed + failed,
                                "settled": run.settled + 1, "updated_at": now}
                    )
                self.runs._add_to_bucket(outcome.run_id, now, processed=done, failed=failed)
            return len(new)


class MemoryQueue:
    def __init__(self):
        self.sent: list[OutboundMessage] = []
        self.delayed: dict[str, int] = {}  # receipt handle -> seconds held back

    def send(self, messages: Sequence[OutboundMessage]) -> None:
        self.sent.extend(messages)

    def delay_redelivery(self, delays: Sequence[tuple[str, int]]) -> None:
        self.delayed.update(delays)

    def peek(self, limit: int) -> list[DeadLetter]:
        return [DeadLetter(message_id=f"m{i}", body=m.body, receive_count=1) for i, m in enumerate(self.sent[:limit])]

    def move_to(self, target: "MemoryQueue", limit: int) -> int:
        moving, self.sent = self.sent[:limit], self.sent[limit:]
        target.send(moving)
        return len(moving)

    def depth(self) -> dict[str, int]:
        return {"visible": len(self.sent), "in_flight": 0, "delayed": 0}

    def drain(self) -> list[OutboundMessage]:
        taken, self.sent = self.sent, []
        return taken


class MemoryFleetStore:
    def __init__(self):
        self.saved: dict[str, WorkerBeat] = {}
        self.desired: dict[str, int] = {}

    def save_beat(self, beat: WorkerBeat) -> None:
        self.saved[beat.worker_id] = beat

    def beats(self) -> list[WorkerBeat]:
        return list(self.saved.values())

    def set_concurrency(self, source: str, concurrency: int, now: float) -> None:
        self.desired[source] = concurrency

    def concurrency(self, source: str) -> int | None:
        return self.desired.get(source)


class MemoryFailureLog:
    def __init__(self):
        self.saved: dict[str, str] = {}

    def record(self, failures: list[tuple[str, int, str]], now: float) -> None:
        self.saved.update((message_id, reason) for message_id, _, reason in failures)

    def reasons(self, message_ids: list[str]) -> dict[str, str]:
        return {m: self.saved[m] for m in message_ids if m in self.saved}


class MemoryDispatchCoordination:
    """A dispatcher's lease, round-robin cursor and outbox (DispatchCoordination's twin)."""

    def __init__(self):
        self.lock = threading.RLock()
        self.lease: tuple[str, float] | None = None  # holder, expires
        self.asked_again = False
        self.cursor = 0
        self.pending_sends: dict[str, tuple[float, str]] = {}

    def take_lease(self, holder: str, now: float, ttl_s: float) -> int | None:
        with self.lock:
            if self.lease is not None and self.lease[1] >= now:
                self.asked_again = True
                return None
            self.lease, self.asked_again = (holder, now + ttl_s), False
            return self.cursor

    def release_lease(self, holder: str, cursor: int, now: float, ttl_s: float, final: bool = False) -> bool:
        with self.lock:
            if self.lease is None or self.lease[0] != holder:
                return True  # lost by expiry: the next holder goes on
            self.cursor = cursor
            if self.asked_again and not final:
                self.lease, self.asked_again = (holder, now + ttl_s), False
                return False
            self.lease = None
            return True

    def outbox(self, created_before: float) -> list[tuple[str, str]]:
        with self.lock:
            return [(key, body) for key, (at, body) in self.pending_sends.items() if at < created_before]

    def forget_outbox(self, keys: Sequence[str]) -> None:
        with self.lock:
            for key in keys:
                self.pending_sends.pop(key, None)


class MemoryComputeStore(MemoryDispatchCoordination):
    def __init__(self):
        super().__init__()
        self.requests: dict[str, ComputeRequest] = {}
        self.numbers: dict[str, NumberRecord] = {}
        self.backlogs: dict[str, dict[str, BacklogItem]] = {}  # caller -> request id -> item
        self.counts: dict[str, CallerCounts] = {}
        self.wait_log: dict[str, list[float]] = {}

    def _count(self, caller: str) -> CallerCounts:
        return self.counts.setdefault(caller, CallerCounts(caller=caller))

    def submit(self, request: ComputeRequest, now: float) -> ComputeRequest:
        with self.lock:
            owner = request.number not in self.numbers  # the claim: first request for a number computes it
            stored = request.model_copy(update={"owner": owner})
            self.requests[stored.id] = stored
            if owner:
                self.numbers[stored.number] = NumberRecord(number=stored.number, status="pending", job_id=stored.id)
                self.backlogs.setdefault(stored.caller, {})[stored.id] = BacklogItem(
                    id=stored.id, number=stored.number, submitted_at=stored.submitted_at)
                self._count(stored.caller).backlog += 1
            return stored.model_copy()

    def submit_many(self, requests: Sequence[ComputeRequest], now: float) -> list[ComputeRequest]:
        with self.lock:
            return [self.submit(request, now) for request in requests]

    def request(self, request_id: str) -> ComputeRequest | None:
        with self.lock:
            found = self.requests.get(request_id)
            return found.model_copy() if found else None

    def number(self, number: str) -> NumberRecord | None:
        with self.lock:
            found = self.numbers.get(number)
            return found.model_copy() if found else None

    def due_by(self, until: float, limit: int) -> list[float]:
        with self.lock:
            return sorted(item.due for item in self.schedule.values() if (item.due or 0) <= until)[:limit]

    def callers(self) -> list[CallerCounts]:
        with self.lock:
            return [c.model_copy() for c in self.counts.values()]

    def waits(self, caller: str, limit: int) -> list[float]:
        with self.lock:
            return list(self.wait_log.get(caller, [])[-limit:])

    def backlog(self, caller: str, limit: int) -> list[BacklogItem]:
        with self.lock:
            items = sorted(self.backlogs.get(caller, {}).values(), key=lambda i: (i.submitted_at, i.id))
            return items[:limit]

    def admit(self, caller: str, items: Sequence[BacklogItem], body: str, now: float) -> str:
        with self.lock:
            backlog = self.backlogs.get(caller, {})
            if any(item.id not in backlog for item in items):
                raise StaleWrite("a backlog item was admitted already")
            for item in items:
                del backlog[item.id]
                record = self.numbers[item.number]
                self.numbers[item.number] = record.model_copy(update={"status": "running", "admitted_at": now})
            counts = self._count(caller)
            counts.backlog -= len(items)
            counts.in_flight += len(items)
            key = items[0].id
            self.pending_sends[key] = (now, body)
            return key

    def settle(self, outcome: JobOutcome) -> None:
        """What the ledger does for a new compute outcome: the number's record and the caller's counters."""
        with self.lock:
            record = self.numbers.get(outcome.number)
            if record is not None:
                self.numbers[outcome.number] = record.model_copy(update={
                    "status": outcome.outcome, "factors": outcome.factors, "error": outcome.error,
                    "finished_at": outcome.finished_at, "computations": record.computations + 1})
            counts = self._count(outcome.run_id)
            counts.in_flight -= 1
            if outcome.outcome == "done":
                counts.done += 1
            else:
                counts.failed += 1
            if outcome.submitted_at is not None:
                self.wait_log.setdefault(outcome.run_id, []).append(outcome.finished_at - outcome.submitted_at)


class MemoryTaskStore(MemoryDispatchCoordination):
    """DynamoTaskStore's twin: the same conditions on each status change, checked under one lock."""

    def __init__(self):
        super().__init__()
        self.jobs: dict[str, TaskJob] = {}
        self.main_texts: dict[str, str] = {}
        self.schedule: dict[str, TaskBacklogItem] = {}  # job id -> item waiting for its time
        self.backlogs: dict[str, dict[str, TaskBacklogItem]] = {}  # caller -> backlog key -> item
        self.counts: dict[str, CallerCounts] = {}
        self.claims: dict[tuple[str, str], tuple[str, str, float]] = {}  # (caller, key) -> job id, body hash, expiry
        self.by_status: dict[str, int] = {}
        self.by_type: dict[str, int] = {}
        self.total = 0
        self.minutes: dict[int, tuple[int, int]] = {}
        self.is_paused = False

    # -- helpers: each status change checks its condition, then changes the job, its place and the counters --

    def _count(self, caller: str) -> CallerCounts:
        return self.counts.setdefault(caller, CallerCounts(caller=caller))

    def _move_status(self, **deltas: int) -> None:
        for status, delta in deltas.items():
            self.by_status[status] = self.by_status.get(status, 0) + delta

    def _change(self, job_id: str, condition, entry: TimelineEntry | None = None, **changes) -> TaskJob:
        job = self.jobs.get(job_id)
        if job is None or not condition(job):
            raise StaleWrite(f"job {job_id} changed")
        timeline = job.timeline + ([entry] if entry else [])
        self.jobs[job_id] = job.model_copy(update={**changes, "timeline": timeline})
        return self.jobs[job_id]

    def _enqueue(self, item: TaskBacklogItem) -> None:
        self.backlogs.setdefault(item.caller, {})[backlog_key(item)] = item
        self._count(item.caller).backlog += 1

    def _attributes(self, job: TaskJob) -> dict:
        return {**job.model_dump(), **listing_attributes(job, self.main_texts[job.id])}

    # -- job items --

    def create(self, job: TaskJob, main_text: str, idempotency: tuple[str, str, str] | None, now: float) -> TaskJob:
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

    def get(self, job_id: str) -> TaskJob | None:
        with self.lock:
            found = self.jobs.get(job_id)
            return found.model_copy() if found else None

    def list(self, plan, start: dict[str, str] | None, limit: int) -> tuple[list[TaskJob], bool]:
        with self.lock:
            rows = [(attributes[plan.range_attribute], job) for job in self.jobs.values()
                    if plan.matches(attributes := self._attributes(job))]
        rows.sort(key=lambda row: row[0], reverse=not plan.forward)
        if start is not None:
            after = start[plan.range_attribute]
            rows = [row for row in rows if (row[0] > after if plan.forward else row[0] < after)]
        return [job.model_copy() for _, job in rows[:limit]], len(rows) > limit

    # -- status changes --

    def cancel(self, job: TaskJob, now: float) -> None:
        with self.lock:
            self._change(job.id, lambda s: s.status == "pending" and s.place == job.place,
                         TimelineEntry(status="cancelled", at=now, attempt=job.attempts, note="cancelled"),
                         status="cancelled", place="none", finished_at=now)
            if job.place == "queued":
                del self.backlogs[job.caller][backlog_key(backlog_item(job))]
                self._count(job.caller).backlog -= 1
            elif job.place == "scheduled":
                del self.schedule[job.id]
            elif job.place == "admitted":
                self._count(job.caller).in_flight -= 1
            self._move_status(pending=-1, cancelled=1)

    def start(self, job_id: str, attempt: int, worker: str, now: float) -> None:
        with self.lock:
            self._change(job_id, lambda s: s.status == "pending" and s.place == "admitted" and s.attempts == attempt - 1,
                         TimelineEntry(status="running", at=now, worker=worker, attempt=attempt),
                         status="running", place="none", attempts=attempt, started_at=now)
            self._move_status(pending=-1, running=1)

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

    def retry(self, job: TaskJob, now: float) -> None:
        with self.lock:
            requeued = self._change(job.id, lambda s: s.status == "failed",
                                    TimelineEntry(status="pending", at=now, attempt=0, note="retried by admin"),
                                    status="pending", place="queued", attempts=0, error=None, result=None,
                                    started_at=None, finished_at=None)
            self._enqueue(backlog_item(requeued))
            self._move_status(failed=-1, pending=1)

    def settle(self, outcome: JobOutcome, now: float) -> bool:
        """What the ledger does for a typed job's outcome; False if that attempt is no longer the running one.
        Throughput counts it in the minute it is recorded, as DynamoDB's settlement does."""
        final = "completed" if outcome.outcome == "done" else "failed"
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
            self._count(job.caller).in_flight -= 1
            self._move_status(running=-1, **{final: 1})
            minute = int(now) // 60 * 60
            done, failed = self.minutes.get(minute, (0, 0))
            self.minutes[minute] = (done + (final == "completed"), failed + (final == "failed"))
            return True

    def stats(self, since_minute: int, until_minute: int) -> TaskStats:
        with self.lock:
            return TaskStats(by_status=dict(self.by_status), by_type=dict(self.by_type), total=self.total,
                             minutes={m: c for m, c in self.minutes.items() if since_minute <= m <= until_minute})

    # -- admission --

    def paused(self) -> bool:
        return self.is_paused

    def set_paused(self, paused: bool, now: float) -> None:
        self.is_paused = paused

    def prepare_admission(self, now: float) -> bool:
        with self.lock:
            due = sorted((item for item in self.schedule.values() if (item.due or 0) <= now), key=lambda i: i.due)
            for item in due[:100]:
                self._change(item.id, lambda s: s.status == "pending" and s.place == "scheduled", place="queued")
                del self.schedule[item.id]
                self._enqueue(item.model_copy(update={"due": None}))
            return not self.is_paused

    def due_by(self, until: float, limit: int) -> list[float]:
        with self.lock:
            return sorted(item.due for item in self.schedule.values() if (item.due or 0) <= until)[:limit]

    def callers(self) -> list[CallerCounts]:
        with self.lock:
            return [c.model_copy() for c in self.counts.values()]

    def backlog(self, caller: str, limit: int) -> list[TaskBacklogItem]:
        with self.lock:
            backlog = self.backlogs.get(caller, {})
            return [backlog[key].model_copy() for key in sorted(backlog)[:max(0, limit)]]

    def admit(self, caller: str, items: Sequence[TaskBacklogItem], body: str, now: float) -> str:
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
