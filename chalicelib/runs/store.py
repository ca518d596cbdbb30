"""The paced runs' store port."""
from __future__ import annotations

from typing import Protocol

from chalicelib.runs.models import Run, Slice, ThroughputBucket


class RunStore(Protocol):
    def current(self) -> Run | None:
        """The run the current-run pointer names, or None before the first run."""

    def get(self, run_id: str) -> Run | None: ...

    def create_current(self, run: Run) -> None:
        """Store `run` and point the current-run pointer at it.

        Raises RunAlreadyActive if the current run is still active.
        """

    def change_rate(self, run: Run, *, x: int, y: float, anchor_at: float, now: float) -> None:
        """Re-anchor the schedule at `run.enqueued` with a new rate.

        Raises StaleWrite unless the run is still running with the same `enqueued` as `run`.
        """

    def stop(self, run: Run, now: float) -> None:
        """Raises StaleWrite unless the run is still running."""

    def advance(self, run: Run, *, end: int, next_token: str, now: float) -> None:
        """Claim jobs [run.enqueued, end), record them as an outbox slice, and pass the clock on.

        Raises StaleWrite unless `run.tick_token` still holds the clock, the
        run is still running, nobody else moved `enqueued` and the rate was
        not changed since `run` was read.
        """

    def replace_token(self, run: Run, *, next_token: str, now: float) -> None:
        """Hand the clock to a new tick (restarting a chain). Raises StaleWrite on a race."""

    def slices(self, run_id: str) -> list[Slice]: ...

    def forget_slice(self, run_id: str, start: int) -> None: ...

    def throughput(self, run_id: str, since: int, until: int) -> list[ThroughputBucket]:
        """Per-second buckets in [since, until], oldest first; seconds with no activity are absent."""
