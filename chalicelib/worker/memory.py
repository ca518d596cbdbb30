"""The result ledger's in-memory twin: one outcome per job id, and the origin's settlement, under one lock."""
from __future__ import annotations

import threading
from typing import Callable, Mapping, Sequence

from chalicelib.core.jobs import JobOutcome, Origin
from chalicelib.worker.ledger import ResultLedger

# What a new outcome settles besides its result: False if its condition fails (as DynamoDB's would), and then
# the outcome is not recorded.
Settle = Callable[[JobOutcome, float], bool]


class MemoryResultLedger(ResultLedger):
    def __init__(self, settlements: Mapping[Origin, Settle], outcomes: dict[str, JobOutcome] | None = None):
        self.settlements = settlements
        # Shared with the typed jobs' twin, whose admin retry removes a failed outcome (as DynamoDB's does).
        self.outcomes: dict[str, JobOutcome] = {} if outcomes is None else outcomes
        self._lock = threading.Lock()

    def record(self, outcomes: Sequence[JobOutcome], now: float) -> list[JobOutcome]:
        with self._lock:
            new = [o for o in outcomes if o.job_id not in self.outcomes and self.settlements[o.origin](o, now)]
            self.outcomes.update((outcome.job_id, outcome) for outcome in new)
            return new
