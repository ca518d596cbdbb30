"""The settled-job sample in the state table: one item per settled job, under a partition per caller and way in.

  <prefix><caller>  <finished_at>#<job id>   queue_wait (s), expires_at (TTL a week)

Fair compute's prefix is `CWAIT#`, typed jobs' `TWAIT#`. Items written before the queue wait was kept carry
`wait` (submitted to finished) instead; they count as settled, with no queue wait.
"""
from __future__ import annotations

from typing import Any

from chalicelib.aws.codec import to_item
from chalicelib.callers.models import Settled
from chalicelib.core.jobs import JobOutcome
from chalicelib.worker.settlement import Write

SETTLED_TTL_S = 7 * 24 * 3600


def settled_put(state_table: str, partition: str, outcome: JobOutcome) -> Write:
    """The sample item of one new outcome, for the settlement's transaction (no condition: the ledger's result
    item decides whether the outcome is new)."""
    sample = Settled.of(outcome)
    item: dict[str, Any] = {"pk": partition, "sk": f"{outcome.finished_at:017.6f}#{outcome.job_id}",
                            "expires_at": int(outcome.finished_at) + SETTLED_TTL_S}
    if sample.queue_wait_s is not None:
        item["queue_wait"] = sample.queue_wait_s
    return {"Put": {"TableName": state_table, "Item": to_item(item)}}


def settled_of(item: dict[str, Any]) -> Settled:
    """A decoded sample item as a Settled."""
    wait = item.get("queue_wait")
    return Settled(finished_at=float(str(item["sk"]).split("#", 1)[0]),
                   queue_wait_s=None if wait is None else float(wait))
