"""What new outcomes of one origin write in DynamoDB beside their result items: the port each origin fills.

The ledger (worker/dynamo.py) puts each outcome's result item with the
condition that it is the first, and the origin's settlement writes in the same
transaction, so counters and records move exactly when a result is new. It
knows which items belong to which outcome, so a cancellation reason names the
outcome to drop, whatever order an origin lists its writes in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

from chalicelib.core.jobs import JobOutcome

Write = dict[str, Any]  # one TransactWriteItems entry: {"Put": …}, {"Update": …}, {"Delete": …}


@dataclass
class SettlementWrites:
    per_outcome: list[list[Write]]  # in the outcomes' order; a failed condition here drops that outcome
    shared: list[Write] = field(default_factory=list)  # once per group or per transaction (it touches an item once)


class Settlement(Protocol):
    """One transaction settles the outcomes of several groups (callers, runs) of one origin: a worker's batch holds
    messages of many callers, and a transaction per caller would cost as many calls."""

    items_per_outcome: int  # at most, besides the result item
    shared_items: int  # at most, per group
    common_items: int  # at most, once per transaction whatever its groups (counters all groups add to)

    def writes(self, groups: Mapping[str, Sequence[JobOutcome]], now: float) -> SettlementWrites:
        """The writes of each group's outcomes; `per_outcome` in the order of the groups, then of their outcomes."""
        ...
