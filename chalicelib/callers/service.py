"""GET /api/callers: each caller in each way in, with its weight, backlog, in flight, throughput and waits.

Counts, weights and rate limits are admission's (a Query and a GetItem per
way in; only typed jobs take limits, PUT /api/jobs/limits). Throughput and
waits come from the caller's latest `SAMPLE_SIZE` settled jobs, which each
settlement samples in the transaction that records them (one Query per row,
and none for a row that has settled nothing). So the figures cost the GET,
never the job:

- **throughput**: the jobs settled in the last `WINDOW_S` seconds. When all
  the sampled jobs settled within them, the sample cannot see the whole
  minute; it is then the sample's rate over its span, per minute.
- **queue wait**: submitted to started (of the attempt that settled, so a
  retried job's wait includes its earlier attempts); p50 and p95 by nearest
  rank over the sample.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from chalicelib.admission.models import caller_limit
from chalicelib.callers.models import CallerOrigin, Callers, CallerView, Settled
from chalicelib.callers.store import CallerFigures
from chalicelib.core.stats import percentile

SAMPLE_SIZE = 500
WINDOW_S = 60.0


def throughput_per_min(sample: Sequence[Settled], now: float, sample_size: int = SAMPLE_SIZE) -> float:
    """Jobs settled per minute over the last WINDOW_S seconds, from `sample` (the newest first, at most
    `sample_size`: a full one may have left out older jobs of the window)."""
    recent = [s for s in sample if s.finished_at > now - WINDOW_S]
    if len(recent) < sample_size:
        return len(recent) * 60 / WINDOW_S
    return round(len(recent) * 60 / max(now - recent[-1].finished_at, 1.0), 1)


def view(ways_in: Mapping[CallerOrigin, CallerFigures], now: float) -> Callers:
    rows = []
    for origin, figures in ways_in.items():
        limits = figures.limits()
        for counts in figures.callers():
            sample = figures.settled(counts.caller, SAMPLE_SIZE) if counts.done + counts.failed else []
            waits = [s.queue_wait_s for s in sample if s.queue_wait_s is not None]
            rows.append(CallerView(**counts.model_dump(), origin=origin, sampled=len(sample),
                                   limit=limits.get(caller_limit(counts.caller)),
                                   throughput_per_min=throughput_per_min(sample, now),
                                   p50_wait_s=percentile(waits, 0.5), p95_wait_s=percentile(waits, 0.95)))
    rows.sort(key=lambda row: (row.caller, row.origin))
    return Callers(callers=rows, sample_size=SAMPLE_SIZE, window_s=WINDOW_S)
