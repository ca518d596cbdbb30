"""Starting, re-pacing, stopping and reporting a run. Plain functions over ports."""
from __future__ import annotations

import logging
import secrets

from chalicelib.core.errors import NoActiveRun, StaleWrite
from chalicelib.core.times import compact_stamp, iso
from chalicelib.observability.logs import current_correlation_id
from chalicelib.runs.models import AchievedRate, ChangeRate, Run, RunStatus, StartRun, ThroughputBucket, Tick
from chalicelib.runs.pacing import Pacer, due_time
from chalicelib.runs.store import RunStore

log = logging.getLogger(__name__)

RATE_WINDOW_S = 60
_OPTIMISTIC_RETRIES = 5  # a rate change races at most the once-a-second tick


def new_run_id(now: float) -> str:
    return f"run-{compact_stamp(now)}-{secrets.token_hex(3)}"


def start_run(command: StartRun, pacer: Pacer, now: float) -> Run:
    token = pacer.new_token()
    run = Run(
        run_id=new_run_id(now),
        state="running",
        x=command.x,
        y=command.y,
        total=command.total,
        anchor_at=now,
        tick_token=token,
        tick_at=now,
        started_at=now,
        updated_at=now,
        correlation_id=current_correlation_id(),
    )
    pacer.runs.create_current(run)  # raises RunAlreadyActive
    log.info("run started", extra={"run_id": run.run_id, "x": run.x, "y": run.y, "total": run.total})
    # Sent only once the run exists, or the tick would find no run and end the chain.
    # If we die before this send, the watchdog starts the chain within a minute.
    pacer.send_tick(Tick(run_id=run.run_id, token=token))
    return run


def change_rate(command: ChangeRate, pacer: Pacer, now: float) -> Run:
    for _ in range(_OPTIMISTIC_RETRIES):
        run = _active_run(pacer.runs)
        new_rate = command.x / (command.y * 60.0)
        # The next job keeps its old time if that is sooner than one new interval away,
        # so speeding up bites at once and slowing down never stalls a job already due.
        anchor_at = min(max(due_time(run, run.enqueued), now), now + 1.0 / new_rate)
        try:
            pacer.runs.change_rate(run, x=command.x, y=command.y, anchor_at=anchor_at, now=now)
        except StaleWrite:
            continue  # a tick claimed jobs meanwhile; re-anchor on the fresh cursor
        return _reread(pacer.runs, run.run_id)
    raise StaleWrite("the run kept changing; try again")


def stop_run(pacer: Pacer, now: float) -> Run:
    run = _active_run(pacer.runs)
    try:
        pacer.runs.stop(run, now)
    except StaleWrite as exc:
        raise NoActiveRun("the run stopped or completed meanwhile") from exc
    return _reread(pacer.runs, run.run_id)


def _reread(runs: RunStore, run_id: str) -> Run:
    run = runs.get(run_id)
    if run is None:  # runs are never deleted
        raise NoActiveRun(f"run {run_id} is gone")
    return run


def _active_run(runs: RunStore) -> Run:
    run = runs.current()
    if run is None:
        raise NoActiveRun("no run has been started")
    if run.completed:
        raise NoActiveRun(f"run {run.run_id} has completed")
    if run.state != "running":
        raise NoActiveRun(f"run {run.run_id} is {run.state}")
    return run


def status_of(run: Run | None, buckets: list[ThroughputBucket], now: float) -> RunStatus:
    if run is None:
        return RunStatus(state="idle")
    until = int(now)
    by_second = {bucket.t: bucket for bucket in buckets}
    series = [by_second.get(t, ThroughputBucket(t=t)) for t in range(until - RATE_WINDOW_S + 1, until + 1)]
    # Early in a run, average over the time it has existed rather than a mostly empty minute.
    window = max(1.0, min(float(RATE_WINDOW_S), now - run.started_at))
    per_min = 60.0 / window
    return RunStatus(
        state="completed" if run.completed else run.state,
        run_id=run.run_id,
        x=run.x,
        y=run.y,
        total=run.total,
        configured_per_min=round(run.rate_per_second * 60.0, 3),
        enqueued=run.enqueued,
        processed=run.processed,
        failed=run.failed,
        in_flight=run.enqueued - run.settled,
        achieved=AchievedRate(
            window_s=round(window),
            enqueued_per_min=round(sum(b.enqueued for b in series) * per_min, 2),
            processed_per_min=round(sum(b.processed for b in series) * per_min, 2),
        ),
        series=series,
        started_at=iso(run.started_at),
        updated_at=iso(run.updated_at),
        stopped_at=iso(run.stopped_at),
    )


def get_status(runs: RunStore, now: float) -> RunStatus:
    run = runs.current()
    buckets = runs.throughput(run.run_id, int(now) - RATE_WINDOW_S + 1, int(now)) if run else []
    return status_of(run, buckets, now)
