"""What the callers view needs of a way in: its callers' admission counts and limits, and a sample of their settled
jobs.

Fair compute's store and the typed jobs' store implement it (beside AdmissionStore); each settlement writes
the sample in the transaction that records the outcomes, so reading it costs the GET, never the job.
"""
from __future__ import annotations

from typing import Protocol

from chalicelib.admission.models import CallerCounts
from chalicelib.callers.models import Settled


class CallerFigures(Protocol):
    def callers(self) -> list[CallerCounts]:
        """Each caller's backlog, in-flight, done and failed counts, and its weight."""
        ...

    def limits(self) -> dict[str, float]:
        """The rate limits in force, by limit key (admission/models.py)."""
        ...

    def settled(self, caller: str, limit: int) -> list[Settled]:
        """The caller's latest `limit` settled jobs, the newest first."""
        ...
