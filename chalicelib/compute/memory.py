"""Fair compute's in-memory twin."""
from __future__ import annotations

from typing import AbstractSet, Sequence

from chalicelib.admission.memory import MemoryDispatchCoordination
from chalicelib.callers.models import Settled
from chalicelib.compute.models import ComputeBacklogItem, ComputeRequest, NumberRecord
from chalicelib.compute.store import ComputeStore
from chalicelib.core.errors import StaleWrite
from chalicelib.core.jobs import JobOutcome


class MemoryComputeStore(MemoryDispatchCoordination, ComputeStore):
    def __init__(self) -> None:
        super().__init__()
        self.requests: dict[str, ComputeRequest] = {}
        self.numbers: dict[str, NumberRecord] = {}
        self.backlogs: dict[str, dict[str, ComputeBacklogItem]] = {}  # caller -> request id -> item
        self.settled_log: dict[str, list[Settled]] = {}  # caller -> settled jobs, as recorded

    def submit(self, request: ComputeRequest, now: float) -> ComputeRequest:
        with self.lock:
            owner = request.number not in self.numbers  # the claim: first request for a number computes it
            stored = request.model_copy(update={"owner": owner})
            self.requests[stored.id] = stored
            if owner:
                self.numbers[stored.number] = NumberRecord(number=stored.number, status="pending", job_id=stored.id,
                                                           caller=stored.caller, submitted_at=stored.submitted_at)
                self.backlogs.setdefault(stored.caller, {})[stored.id] = ComputeBacklogItem(
                    id=stored.id, number=stored.number, submitted_at=stored.submitted_at,
                    correlation_id=stored.correlation_id)
                self._count(stored.caller).backlog += 1
            return stored.model_copy()

    def submit_many(self, requests: Sequence[ComputeRequest], now: float) -> list[ComputeRequest]:
        with self.lock:
            return [self.submit(request, now) for request in requests]

    def request(self, request_id: str) -> ComputeRequest | None:
        with self.lock:
            found = self.requests.get(request_id)
            return found.model_copy() if found else None

    def number(self, number: str) -> NumberRecord | None:
        with self.lock:
            found = self.numbers.get(number)
            if found is None:
                return None
            admitted = found.status == "pending" and found.job_id not in self.backlogs.get(found.caller or "", {})
            return found.model_copy(update={"status": "running"} if admitted else {})

    def settled(self, caller: str, limit: int) -> list[Settled]:
        with self.lock:
            return sorted(self.settled_log.get(caller, []), key=lambda s: s.finished_at, reverse=True)[:limit]

    def backlog(self, caller: str, limit: int, skip: AbstractSet[str] = frozenset()) -> list[ComputeBacklogItem]:
        """Compute numbers are under no rate limit: `skip` never applies."""
        with self.lock:
            items = sorted(self.backlogs.get(caller, {}).values(), key=lambda i: (i.submitted_at, i.id))
            return items[:limit]

    def admit(self, caller: str, items: Sequence[ComputeBacklogItem], body: str, now: float) -> str:
        with self.lock:
            backlog = self.backlogs.get(caller, {})
            if any(item.id not in backlog for item in items):
                raise StaleWrite("a backlog item was admitted already")
            for item in items:
                del backlog[item.id]
            counts = self._count(caller)
            counts.backlog -= len(items)
            counts.in_flight += len(items)
            key = items[0].id
            self.pending_sends[key] = (now, body)
            return key

    def settle(self, outcome: JobOutcome, now: float) -> bool:
        """What the ledger does for a new compute outcome: the number's record and the caller's counters."""
        with self.lock:
            number = outcome.number or ""
            record = self.numbers.get(number)
            if record is not None:
                self.numbers[number] = record.model_copy(update={
                    "status": outcome.outcome, "factors": outcome.factors, "error": outcome.error,
                    "finished_at": outcome.finished_at, "computations": 1,
                    **({"admitted_at": outcome.admitted_at} if outcome.admitted_at is not None else {})})
            counts = self._count(outcome.group)
            counts.in_flight -= 1
            if outcome.outcome == "done":
                counts.done += 1
            else:
                counts.failed += 1
            self.settled_log.setdefault(outcome.group, []).append(Settled.of(outcome))
            return True
