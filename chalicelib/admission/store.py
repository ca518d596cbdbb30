"""Admission's store port: what the dispatcher needs of a feature's backlogs, lease and outbox.

Fair compute's store and the typed jobs' store each implement it over their
own partitions; `Item` is what a backlog holds for that feature.
"""
from __future__ import annotations

from typing import AbstractSet, Protocol, Sequence, TypeVar

from chalicelib.admission.models import CallerCounts, Lease

Item = TypeVar("Item")


class AdmissionStore(Protocol[Item]):
    def callers(self) -> list[CallerCounts]:
        """Each caller's backlog and in-flight counts."""
        ...

    def backlog(self, caller: str, limit: int, skip: AbstractSet[str] = frozenset()) -> list[Item]:
        """The caller's next `limit` backlog items, in the order they should be admitted, leaving out those under
        a limit key in `skip` (limits that have no slot left in this pass; a store whose items have no such key
        ignores it)."""
        ...

    def set_weight(self, caller: str, weight: float, now: float) -> None:
        """The caller's weight in fair shares from now on (it shows in `callers`)."""
        ...

    def admit(self, caller: str, items: Sequence[Item], body: str, now: float) -> str:
        """Move items from the backlog to in flight, with their message in the outbox (one transaction).

        Raises StaleWrite if any item left the backlog already. Returns the outbox key.
        """
        ...

    def admit_many(self, messages: Sequence[tuple[str, Sequence[Item], str]], now: float) -> list[str | None]:
        """`admit` for several messages, each (caller, items, body), of any callers, in as few transactions as fit
        (DynamoDB's 100 items). Each message's outbox key, in order; None for one whose items left the backlog
        already (it is not sent)."""
        ...

    def take_lease(self, holder: str, now: float, ttl_s: float) -> Lease | None:
        """Become the one dispatcher until now + ttl_s. Returns the lease's state (the round-robin cursor, the rate
        limits), or None if it is held; then the holder is asked to go round again (see release_lease)."""
        ...

    def release_lease(self, holder: str, lease: Lease, now: float, ttl_s: float, final: bool = False) -> bool:
        """Store the lease's state and let it go; True. If another dispatcher asked meanwhile (and not `final`),
        keep it until now + ttl_s, clear the request, set `lease.per_minute` to the limits in force, and return
        False: the holder runs another pass, under any limit an admin changed meanwhile."""
        ...

    def limits(self) -> dict[str, float]:
        """The rate limits in force: limit key (admission/models.py) -> jobs per minute."""
        ...

    def set_limit(self, key: str, per_minute: float | None, now: float) -> None:
        """Limit the jobs under `key` to `per_minute` from the next pass on; None removes the limit."""
        ...

    def outbox(self, created_before: float) -> list[tuple[str, str]]:
        """(key, body) of admitted messages not yet known to be sent."""
        ...

    def forget_outbox(self, keys: Sequence[str]) -> None: ...
