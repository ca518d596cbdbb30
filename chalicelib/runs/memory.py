"""The run store's in-memory twin: the same conditions, under one lock."""
from __future__ import annotations

import threading
from typing import Any, Callable

from chalicelib.core.errors import RunAlreadyActive, StaleWrite
from chalicelib.core.jobs import JobOutcome
from chalicelib.runs.models import Run, Slice, ThroughputBucket
from chalicelib.runs.store import RunStore


class MemoryRunStore(RunStore):
    def __init__(self) -> None:
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

    def _update_if(self, run: Run, condition: Callable[[Run], bool], **changes: Any) -> None:
        with self.lock:
            stored = self.runs.get(run.run_id)
            if stored is None or not condition(stored):
                raise StaleWrite(f"run {run.run_id} changed")
            self.runs[run.run_id] = stored.model_copy(update=changes)

    def _holds_clock(self, seen: Run) -> Callable[[Run], bool]:
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

    def settle(self, outcome: JobOutcome, now: float) -> bool:
        """What the ledger does for a new outcome of a run: its counters and this second's bucket."""
        done, failed = (1, 0) if outcome.outcome == "done" else (0, 1)
        with self.lock:
            run = self.runs.get(outcome.group)
            if run is not None:
                self.runs[outcome.group] = run.model_copy(
                    update={"processed": run.processed + done, "failed": run.failed + failed,
                            "settled": run.settled + 1, "updated_at": now})
            self._add_to_bucket(outcome.group, now, processed=done, failed=failed)
        return True

    def _add_to_bucket(self, run_id: str, now: float, **counts: int) -> None:
        key = (run_id, int(now))
        bucket = self.buckets.setdefault(key, ThroughputBucket(t=int(now)))
        for name, count in counts.items():
            setattr(bucket, name, getattr(bucket, name) + count)
