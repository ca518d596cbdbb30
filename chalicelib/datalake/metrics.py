"""The metrics summary (`GET /api/metrics/summary`): the system at a glance, from a bounded read.

What it reads, whatever the size of the system: the catalog's origin counters
(one item per way in), the last 61 minute counters, the newest SAMPLED_OBJECTS
objects' samples (up to 32 records each), the fleet's beats (one per worker),
each way in's jobs in flight (`in_flight`: the current run, and the callers'
counts of fair compute and typed jobs), and the depth of the jobs queue and
the DLQ (one call each). Every figure but those in flight and the queue
depths comes from results already in the datalake, so it trails the results
table by the datalake's lag (a second or two locally).

Locally it is where the figures of the EMF lines (observability/emf.py) are
read: per way in, `done`, `failed` and `retries` are JobsProcessed, JobsFailed
and JobRetries summed, counted from the same outcomes, once each; `admitted`
(done + failed + in flight) is JobsAdmitted summed; the percentiles are
QueueWait's and ProcessingTime's; and DeadLettered shows as `dlq_depth` until
a redrive.
"""
from __future__ import annotations

from typing import Any, Sequence

from chalicelib.admission.service import Admission
from chalicelib.core.stats import percentile
from chalicelib.datalake.store import Catalog
from chalicelib.fleet.models import Fleet
from chalicelib.runs.store import RunStore

SAMPLED_OBJECTS = 60  # newest objects whose samples give the percentiles: up to 1,920 records


def _spread(values: Sequence[float]) -> dict[str, float | None]:
    return {"p50": percentile(values, 0.5, 3), "p95": percentile(values, 0.95, 3), "p99": percentile(values, 0.99, 3)}


def in_flight(runs: RunStore, admission: Admission) -> dict[str, int]:
    """Jobs admitted and not yet settled, per way in: the current run's, and the callers' of each dispatcher."""
    run = runs.current()
    counts = {"run": max(0, run.enqueued - run.settled) if run else 0}
    for origin, dispatcher in admission.dispatchers.items():
        counts[origin] = sum(max(0, caller.in_flight) for caller in dispatcher.store.callers())
    return counts


def summary(catalog: Catalog, fleet: Fleet, jobs_queue: dict[str, int], dlq: dict[str, int], now: float,
            jobs_in_flight: dict[str, int] | None = None) -> dict[str, Any]:
    origins = catalog.origins()
    jobs_in_flight = jobs_in_flight or {}
    by_origin: dict[str, dict[str, int]] = {}
    for origin in sorted(set(origins) | set(jobs_in_flight)):
        counts = {name: origins.get(origin, {}).get(name, 0) for name in ("done", "failed", "retries")}
        flying = jobs_in_flight.get(origin, 0)
        by_origin[origin] = {**counts, "in_flight": flying, "admitted": counts["done"] + counts["failed"] + flying}
    done = sum(c["done"] for c in by_origin.values())
    failed = sum(c["failed"] for c in by_origin.values())
    this_minute = int(now // 60)
    minutes = catalog.minutes(this_minute - 60)
    last_minute = [m for m in minutes if m.minute == this_minute - 1]
    last_hour = [m for m in minutes if this_minute - 60 <= m.minute < this_minute]
    hour_done = sum(m.done for m in last_hour)
    hour_failed = sum(m.failed for m in last_hour)
    samples = catalog.samples(SAMPLED_OBJECTS)
    states = [worker.state for worker in fleet.workers]
    return {
        "jobs": {
            "by_status": {"done": done, "failed": failed},
            "by_origin": by_origin,
            "queued_messages": jobs_queue.get("visible", 0) + jobs_queue.get("delayed", 0),
            "in_flight_messages": jobs_queue.get("in_flight", 0),
        },
        "throughput": {
            "last_minute": sum(m.done + m.failed for m in last_minute),
            "last_hour": hour_done + hour_failed,
            "per_second_last_hour": round((hour_done + hour_failed) / 3600, 3),
        },
        "failure_rate": {
            "last_hour": round(hour_failed / (hour_done + hour_failed), 4) if hour_done + hour_failed else None,
            "all_time": round(failed / (done + failed), 4) if done + failed else None,
        },
        "queue_wait_s": _spread([w for s in samples for w in s.waits_s]),
        "processing_s": _spread([d for s in samples for d in s.durations_s]),
        "workers": {"up": sum(1 for s in states if s in ("idle", "busy")), "busy": states.count("busy"),
                    "down": states.count("down"), "stopped": states.count("stopped")},
        "dlq_depth": sum(dlq.values()),
        "datalake_lag_s": {**_spread([lag for s in samples for lag in s.lags_s]),
                           "last_write_age_s": round(now - samples[0].written_at, 3) if samples else None},
        "sampled": {"objects": len(samples), "records": sum(len(s.lags_s) for s in samples), "minutes": len(minutes)},
        "at": round(now, 3),
    }
