"""The ports services depend on. Adapters implement them for DynamoDB/SQS and in memory."""
from __future__ import annotations

from typing import Protocol, Sequence

from chalicelib.models import (BacklogItem, CallerCounts, ComputeRequest, JobOutcome, NumberRecord, OutboundMessage, Run,
                               Slice, ThroughputBucket)


class RunRepository(Protocol):
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


class ResultLedger(Protocol):
    def record(self, outcomes: Sequence[JobOutcome], now: float) -> int:
        """Store each outcome once, keyed by job id, and move the run's counters by exactly that much.

        Outcomes whose job already has one are skipped. Returns how many were new.
        """


class MessageQueue(Protocol):
    def send(self, messages: Sequence[OutboundMessage]) -> None: ...

    def delay_redelivery(self, delays: Sequence[tuple[str, int]]) -> None:
        """Hold received messages (by receipt handle) back for the given seconds."""


class ComputeStore(Protocol):
    """Fair compute's state: requests, one record per number, per-caller backlogs and the dispatch outbox."""

    def submit(self, request: ComputeRequest, now: float) -> ComputeRequest:
        """Store the request. The first request for a number claims it (conditionally) and joins its caller's
        backlog; any later one is stored with `owner=False` and is answered from the number's record."""

    def submit_many(self, requests: Sequence[ComputeRequest], now: float) -> list[ComputeRequest]:
        """`submit` for each, in order, in as few writes as the store allows."""

    def request(self, request_id: str) -> ComputeRequest | None: ...

    def number(self, number: str) -> NumberRecord | None: ...

    def callers(self) -> list[CallerCounts]: ...

    def waits(self, caller: str, limit: int) -> list[float]:
        """The latest `limit` waits (submitted to finished) of the caller's computed requests."""

    def backlog(self, caller: str, limit: int) -> list[BacklogItem]:
        """The caller's oldest backlog items."""

    def take_lease(self, holder: str, now: float, ttl_s: float) -> int | None:
        """Become the one dispatcher until now + ttl_s. Returns the round-robin cursor, or None if it is held;
        then the holder is asked to go round again (see release_lease)."""

    def release_lease(self, holder: str, cursor: int, now: float, ttl_s: float, final: bool = False) -> bool:
        """Store the cursor and let the lease go; True. If another dispatcher asked meanwhile (and not `final`),
        keep it until now + ttl_s, clear the request, and return False: the holder runs another pass."""

    def admit(self, caller: str, items: Sequence[BacklogItem], body: str, now: float) -> str:
        """Move items from the backlog to in flight, with their message in the outbox (one transaction).

        Raises StaleWrite if any item left the backlog already. Returns the outbox key.
        """

    def outbox(self, created_before: float) -> list[tuple[str, str]]:
        """(key, body) of admitted messages not yet known to be sent."""

    def forget_outbox(self, keys: Sequence[str]) -> None: ...
