"""Admission's store port: what the dispatcher needs of a feature's backlogs, lease and outbox.

Fair compute's store and the typed jobs' store each implement it over their
own partitions; `Item` is what a backlog holds for that feature.
"""
from __future__ import annotations

from typing import Protocol, Sequence, TypeVar

from chalicelib.admission.models import CallerCounts

Item = TypeVar("Item")


class AdmissionStore(Protocol[Item]):
    def prepare_admission(self, now: float) -> bool:
        """Called under the lease before each pass: make what fell due admissible; False admits nothing now."""
        ...

    def callers(self) -> list[CallerCounts]:
        """Each caller's backlog and in-flight counts."""
        ...

    def backlog(self, caller: str, limit: int) -> list[Item]:
        """The caller's next `limit` backlog items, in the order they should be admitted."""
        ...

    def set_weight(self, caller: str, weight: float, now: float) -> None:
        """The caller's weight in fair shares from now on (it shows in `callers`)."""
        ...

    def admit(self, caller: str, items: Sequence[Item], body: str, now: float) -> str:
        """Move items from the backlog to in flight, with their message in the outbox (one transaction).

        Raises StaleWrite if any item left the backlog already. Returns the outbox key.
        """
        ...

    def admit_many(self, caller: str, messages: Sequence[tuple[Sequence[Item], str]], now: float) -> list[str | None]:
        """`admit` for several messages of one caller, in as few transactions as fit (DynamoDB's 100 items). Each
        message's outbox key, in order; None for one whose items left the backlog already (it is not sent)."""
        ...

    def take_lease(self, holder: str, now: float, ttl_s: float) -> int | None:
        """Become the one dispatcher until now + ttl_s. Returns the round-robin cursor, or None if it is held;
        then the holder is asked to go round again (see release_lease)."""
        ...

    def release_lease(self, holder: str, cursor: int, now: float, ttl_s: float, final: bool = False) -> bool:
        """Store the cursor and let the lease go; True. If another dispatcher asked meanwhile (and not `final`),
        keep it until now + ttl_s, clear the request, and return False: the holder runs another pass."""
        ...

    def outbox(self, created_before: float) -> list[tuple[str, str]]:
        """(key, body) of admitted messages not yet known to be sent."""
        ...

    def forget_outbox(self, keys: Sequence[str]) -> None: ...
