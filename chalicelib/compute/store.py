"""Fair compute's store port."""
from __future__ import annotations

from typing import Protocol, Sequence

from chalicelib.admission.models import CallerCounts
from chalicelib.compute.models import ComputeBacklogItem, ComputeRequest, NumberRecord


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

    def backlog(self, caller: str, limit: int) -> list[ComputeBacklogItem]:
        """The caller's oldest backlog items."""

    def take_lease(self, holder: str, now: float, ttl_s: float) -> int | None:
        """Become the one dispatcher until now + ttl_s. Returns the round-robin cursor, or None if it is held;
        then the holder is asked to go round again (see release_lease)."""

    def release_lease(self, holder: str, cursor: int, now: float, ttl_s: float, final: bool = False) -> bool:
        """Store the cursor and let the lease go; True. If another dispatcher asked meanwhile (and not `final`),
        keep it until now + ttl_s, clear the request, and return False: the holder runs another pass."""

    def admit(self, caller: str, items: Sequence[ComputeBacklogItem], body: str, now: float) -> str:
        """Move items from the backlog to in flight, with their message in the outbox (one transaction).

        Raises StaleWrite if any item left the backlog already. Returns the outbox key.
        """

    def outbox(self, created_before: float) -> list[tuple[str, str]]:
        """(key, body) of admitted messages not yet known to be sent."""

    def forget_outbox(self, keys: Sequence[str]) -> None: ...
