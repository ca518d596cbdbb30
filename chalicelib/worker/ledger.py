"""The result ledger port: each job's outcome stored once, and its counters moved exactly that much."""
from __future__ import annotations

from typing import Protocol, Sequence

from chalicelib.core.jobs import JobOutcome


class ResultLedger(Protocol):
    def record(self, outcomes: Sequence[JobOutcome], now: float) -> list[JobOutcome]:
        """Store each outcome once, keyed by job id, and move the run's counters by exactly that much.

        Outcomes whose job already has one are skipped. Returns the new ones, in order.
        """
        ...
