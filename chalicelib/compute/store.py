"""Fair compute's store port."""
from __future__ import annotations

from typing import Protocol, Sequence

from chalicelib.admission.store import AdmissionStore
from chalicelib.callers.store import CallerFigures
from chalicelib.compute.models import ComputeBacklogItem, ComputeRequest, NumberRecord


class ComputeStore(AdmissionStore[ComputeBacklogItem], CallerFigures, Protocol):
    """Fair compute's state: requests, one record per number, admission's per-caller backlogs (oldest first),
    lease and outbox, and each caller's settled-job sample."""

    def submit(self, request: ComputeRequest, now: float) -> ComputeRequest:
        """Store the request. The first request for a number claims it (conditionally) and joins its caller's
        backlog; any later one is stored with `owner=False` and is answered from the number's record."""
        ...

    def submit_many(self, requests: Sequence[ComputeRequest], now: float) -> list[ComputeRequest]:
        """`submit` for each, in order, in as few writes as the store allows."""
        ...

    def request(self, request_id: str) -> ComputeRequest | None: ...

    def number(self, number: str) -> NumberRecord | None:
        """The number's record, its status as of now: a pending number out of its owner's backlog is running
        (admission writes nothing on the number)."""
        ...
