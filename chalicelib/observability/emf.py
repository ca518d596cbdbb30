"""Metrics in CloudWatch's embedded metric format (Powertools for AWS Lambda's Metrics): a log line, no AWS call.

Each function below prints one EMF line per origin (the dimension `origin`: run,
compute or typed, beside Powertools' `service`) in namespace `Pacer`; on Lambda,
CloudWatch turns the line into metrics, and locally it is a line on stdout.
Each figure is counted where it happens exactly once:

| metric | unit | counted | where |
|---|---|---|---|
| `JobsAdmitted` | Count | jobs moved into the in-flight window, once, in the write that admits them | a run's tick, a dispatcher's pass |
| `JobsProcessed`, `JobsFailed` | Count | new `done` and `failed` outcomes (the ledger's, not a redelivery's) | the worker |
| `JobRetries` | Count | attempts before the recorded one (`attempt - 1`), per new outcome | the worker |
| `QueueWait` | Seconds | submitted (a paced job: due) to the recorded attempt's start | the worker |
| `ProcessingTime` | Seconds | the recorded attempt's start to its outcome | the worker |
| `DeadLettered` | Count | messages failed on their last receive, which SQS moves to the DLQ (no `origin`) | the worker |

Counted from outcomes, processed, failed, retries, waits and processing times are the figures
`GET /api/metrics/summary` shows from the datalake, which holds each outcome once too.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from chalicelib.core.jobs import JobOutcome, Origin
from chalicelib.observability.logs import SERVICE

NAMESPACE = "Pacer"


def _emit(figures: Iterable[tuple[str, MetricUnit, float]], origin: Origin | None = None) -> None:
    # Ephemeral: each call has its own metric set, so concurrent requests on chalice local's threads never mix.
    metrics = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    if origin is not None:
        metrics.add_dimension(name="origin", value=origin)
    for name, unit, value in figures:
        metrics.add_metric(name=name, unit=unit, value=value)
    if metrics.metric_set:
        metrics.flush_metrics()


def jobs_admitted(origin: Origin, jobs: int) -> None:
    if jobs:
        _emit([("JobsAdmitted", MetricUnit.Count, jobs)], origin)


def outcomes_recorded(outcomes: Sequence[JobOutcome]) -> None:
    """The metrics of new outcomes: counts, retries, and each job's queue wait and processing time."""
    by_origin: dict[Origin, list[JobOutcome]] = {}
    for outcome in outcomes:
        by_origin.setdefault(outcome.origin, []).append(outcome)
    for origin, recorded in by_origin.items():
        figures: list[tuple[str, MetricUnit, float]] = [
            ("JobsProcessed", MetricUnit.Count, sum(1 for o in recorded if o.outcome == "done")),
            ("JobsFailed", MetricUnit.Count, sum(1 for o in recorded if o.outcome == "failed")),
            ("JobRetries", MetricUnit.Count, sum(o.attempt - 1 for o in recorded))]
        for outcome in recorded:
            if outcome.started_at is not None:
                if outcome.submitted_at is not None:
                    figures.append(("QueueWait", MetricUnit.Seconds, outcome.started_at - outcome.submitted_at))
                figures.append(("ProcessingTime", MetricUnit.Seconds, outcome.finished_at - outcome.started_at))
        _emit(figures, origin)


def dead_lettered(messages: int) -> None:
    if messages:
        _emit([("DeadLettered", MetricUnit.Count, messages)])
