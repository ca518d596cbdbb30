"""The settled-job sample in the state table: one item per settlement transaction, under a partition per caller and
way in.

  <prefix><caller>  <newest finished_at>#<first job id>   finished, queue_wait (a list each, one entry per job:
                                                          seconds; a null wait when none was kept), expires_at
                                                          (TTL a week)

Fair compute's prefix is `CWAIT#`, typed jobs' `TWAIT#`. One item per transaction, not per job, keeps the sample
to one write however many jobs a message settles. Items written before that hold one job: `queue_wait` (or,
before the queue wait was kept, `wait`, which counts as settled with no queue wait) and its finish in the key.
"""
from __future__ import annotations

from typing import Any, Sequence

from chalicelib.aws.codec import from_item, to_item
from chalicelib.aws.retry import DomainClient, query_pages
from chalicelib.callers.models import Settled
from chalicelib.core.jobs import JobOutcome
from chalicelib.worker.settlement import Write

SETTLED_TTL_S = 7 * 24 * 3600
ITEMS_PER_PAGE = 100  # sample items read a page at a time, newest first, until the sample is full


def settled_put(state_table: str, partition: str, outcomes: Sequence[JobOutcome]) -> Write:
    """The sample item of a group's new outcomes, for the settlement's transaction (no condition: the ledger's
    result items decide which outcomes are new, and it asks again without the others)."""
    samples = [Settled.of(outcome) for outcome in outcomes]
    newest = max(sample.finished_at for sample in samples)
    return {"Put": {"TableName": state_table, "Item": to_item({
        "pk": partition, "sk": f"{newest:017.6f}#{outcomes[0].job_id}", "expires_at": int(newest) + SETTLED_TTL_S,
        "finished": [sample.finished_at for sample in samples],
        "queue_wait": [sample.queue_wait_s for sample in samples]})}}


def settled_of(item: dict[str, Any]) -> list[Settled]:
    """A decoded sample item's settled jobs."""
    if "finished" in item:
        pairs = zip(item["finished"], item["queue_wait"], strict=True)
    else:  # one job, its finish in the key
        pairs = zip([str(item["sk"]).split("#", 1)[0]], [item.get("queue_wait")])
    return [Settled(finished_at=float(at), queue_wait_s=None if wait is None else float(wait)) for at, wait in pairs]


def latest_settled(db: DomainClient, table: str, partition: str, limit: int) -> list[Settled]:
    """The partition's latest `limit` settled jobs, the newest first."""
    found: list[Settled] = []
    for page in query_pages(db, TableName=table, KeyConditionExpression="pk = :pk", ScanIndexForward=False,
                            ExpressionAttributeValues=to_item({":pk": partition}), Limit=ITEMS_PER_PAGE):
        found += [settled for item in page for settled in settled_of(from_item(item))]
        if len(found) >= limit:
            break
    # An item's key is its newest job, so its older ones may be older than the next item's newest.
    return sorted(found, key=lambda settled: settled.finished_at, reverse=True)[:limit]
