"""What new outcomes of one origin write in DynamoDB beside their result items: the port each origin fills.

The ledger (worker/dynamo.py) puts each outcome's result item with the
condition that it is the first, and the origin's settlement writes in the same
transaction, so counters and records move exactly when a result is new. It
knows which items belong to which outcome, so a cancellation reason names the
outcome to drop, whatever order an origin lists its writes in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from chalicelib.core.jobs import JobOutcome

Write = dict[str, Any]  # one TransactWriteItems entry: {"Put": …}, {"Update": …}, {"Delete": …}


@dataclass
class SettlementWrites:
    per_outcome: list[list[Write]]  # in the outcomes' order; a failed condition here drops that outcome
    shared: list[Write] = field(default_factory=list)  # once for the group (a transaction touches an item once)


class Settlement(Protocol):
    items_per_outcome: int  # at most, besides the result item
    shared_items: int  # at most

    def writes(self, group: str, outcomes: Sequence[JobOutcome], now: float) -> SettlementWrites: ...
