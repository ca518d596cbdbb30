"""The result ledger port: each job's outcome stored once, and its counters moved exactly that much."""
from __future__ import annotations

import logging
from typing import Protocol, Sequence

from chalicelib.core.jobs import JobOutcome
from chalicelib.observability.logs import log_jobs

log = logging.getLogger(__name__)


class ResultLedger(Protocol):
    def record(self, outcomes: Sequence[JobOutcome], now: float) -> list[JobOutcome]:
        """Store each outcome once, keyed by job id, and move the run's counters by exactly that much.

        Outcomes whose job already has one are skipped. Returns the new ones, in order.
        """
        ...


def record_outcomes(ledger: ResultLedger, outcomes: Sequence[JobOutcome], now: float) -> list[JobOutcome]:
    """`ledger.record`, and the ledger's lines: what it recorded and what it dropped as a duplicate, each line
    with its jobs' correlation id. A job twice among `outcomes` (a message and its duplicate, settled together)
    goes to the ledger once: one transaction may not write an item twice."""
    once: dict[str, JobOutcome] = {}
    for outcome in outcomes:
        once.setdefault(outcome.job_id, outcome)
    recorded = ledger.record(list(once.values()), now) if once else []
    new = {id(outcome) for outcome in recorded}
    log_jobs(log, "outcomes recorded", ((o.correlation_id, o.job_id) for o in recorded))
    log_jobs(log, "duplicate outcomes dropped", ((o.correlation_id, o.job_id) for o in outcomes if id(o) not in new))
    return recorded
