"""Workers visible: heartbeats from each worker process, the fleet view, the desired concurrency and bot count.

On Lambda a "worker" is an execution environment: it beats from its first
batch on and falls silent when AWS freezes or reaps it, which is what `down`
means. Locally each runtime worker process of the jobs source beats once as it
starts (`Heartbeat.start`, from app.py's `worker_started`, which the local
runtime calls) and then every `heartbeat_s` from a daemon thread, idle or not.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any, Callable, Iterator

from chalicelib.core.errors import InvalidInput
from chalicelib.core.times import iso
from chalicelib.fleet.models import BotCount, Fleet, WorkerBeat, WorkerView
from chalicelib.fleet.store import FleetStore

log = logging.getLogger(__name__)
JOBS_SOURCE = "process_jobs"  # the event source whose concurrency the API controls
STATE_WRITE_MIN_INTERVAL_S = 1.0


def _iso(moment: float) -> str:
    return iso(moment, timespec="seconds") or ""


def fleet_view(store: FleetStore, now: float, down_after_s: float) -> Fleet:
    views = []
    for beat in sorted(store.beats(), key=lambda b: b.started_at):
        silent = now - beat.last_beat_at
        views.append(WorkerView(
            id=beat.worker_id,
            state="down" if silent > down_after_s and beat.state != "stopped" else beat.state,
            started_at=_iso(beat.started_at),
            last_beat_at=_iso(beat.last_beat_at),
            seconds_since_beat=round(silent, 1),
            jobs_done=beat.jobs_done,
        ))
    return Fleet(concurrency=store.concurrency(JOBS_SOURCE), down_after_s=down_after_s, workers=views)


def set_concurrency(store: FleetStore, concurrency: int, now: float, maximum: int = 100) -> None:
    """`maximum` is the stage's PACER_MAX_WORKER_CONCURRENCY: a stage on a small machine keeps it low."""
    if concurrency > maximum:
        raise InvalidInput(f"concurrency: must be at most {maximum} on this stage",
                           [{"field": "concurrency", "message": f"must be at most {maximum} on this stage"}])
    store.set_concurrency(JOBS_SOURCE, concurrency, now)


def bot_count(store: FleetStore) -> BotCount:
    return BotCount(count=store.bot_count())


def set_bot_count(store: FleetStore, count: int, now: float, maximum: int) -> BotCount:
    """The local stack follows it (infra/stack.py); on AWS bots run on their owners' machines, so it only informs.
    `maximum` is the stage's PACER_MAX_BOTS: each local reference bot is an OS process."""
    if count > maximum:
        raise InvalidInput(f"count: must be at most {maximum} on this stage",
                           [{"field": "count", "message": f"must be at most {maximum} on this stage"}])
    store.set_bot_count(count, now)
    return BotCount(count=count)


class Heartbeat:
    """One per worker process: tracks its state and jobs done, and beats on a timer."""

    def __init__(self, store: FleetStore, worker_id: str, interval_s: float, clock: Callable[[], float] = time.time):
        self._store = store
        self._clock = clock
        self._interval = interval_s
        self._lock = threading.Lock()
        self._beat = WorkerBeat(worker_id=worker_id, state="idle", started_at=clock(), last_beat_at=clock())
        self._thread: threading.Thread | None = None
        self._last_write = 0.0

    def start(self) -> None:
        """Beat now (idle) and from then on every interval, so a worker process that has just started is
        listed before it handles anything. Calling it again does nothing more than a beat."""
        self.beat_now()
        self._ensure_started()

    @contextlib.contextmanager
    def busy(self) -> Iterator[Callable[[int], None]]:
        """Mark the worker busy for the duration; the block reports jobs done through the yielded callable."""
        self._ensure_started()
        done: list[int] = []
        self._set(state="busy")
        try:
            yield done.append
        finally:
            self._set(state="idle", jobs_done=self._beat.jobs_done + sum(done))

    def _set(self, **changes: Any) -> None:
        with self._lock:
            self._beat = self._beat.model_copy(update=changes)
            # State changes are written at once, but at most once a second, so the
            # fleet view follows the work without a write per batch.
            due = self._clock() - self._last_write >= STATE_WRITE_MIN_INTERVAL_S
        if due:
            self.beat_now()

    def beat_now(self) -> None:
        with self._lock:
            self._beat = self._beat.model_copy(update={"last_beat_at": self._clock()})
            self._last_write = self._clock()
            beat = self._beat
        try:
            self._store.save_beat(beat)
        except Exception as exc:  # a missed beat must never fail the work itself
            log.warning("heartbeat failed: %s", exc)

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self._interval)
            self.beat_now()
