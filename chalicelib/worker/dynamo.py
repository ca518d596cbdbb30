"""The result ledger in DynamoDB: one result item per job id, written once, with its origin's settlement."""
from __future__ import annotations

from typing import Mapping, Sequence

from chalicelib.aws.clients import DynamoDBClient
from chalicelib.aws.codec import to_item
from chalicelib.aws.retry import MAX_ATTEMPTS, MAX_TRANSACT_ITEMS, backoff, domain_client
from chalicelib.core.errors import Contended, DependencyUnavailable, StaleWrite
from chalicelib.core.jobs import JobOutcome, Origin
from chalicelib.worker.ledger import ResultLedger
from chalicelib.worker.settlement import Settlement, Write



class DynamoResultLedger(ResultLedger):
    """Writes outcomes and their settlement in one transaction, so each job counts exactly once."""

    def __init__(self, client: DynamoDBClient, results_table: str, settlements: Mapping[Origin, Settlement]):
        self._db = domain_client(client)
        self._results = results_table
        self._settlements = settlements

    def record(self, outcomes: Sequence[JobOutcome], now: float) -> list[JobOutcome]:
        by_group: dict[tuple[Origin, str], list[JobOutcome]] = {}
        for outcome in outcomes:
            by_group.setdefault((outcome.origin, outcome.group), []).append(outcome)
        recorded: set[int] = set()
        for (origin, group), group_outcomes in by_group.items():
            settlement = self._settlements[origin]
            chunk = (MAX_TRANSACT_ITEMS - settlement.shared_items) // (1 + settlement.items_per_outcome)
            for offset in range(0, len(group_outcomes), chunk):
                recorded.update(map(id, self._record_chunk(settlement, group, group_outcomes[offset : offset + chunk],
                                                           now)))
        return [outcome for outcome in outcomes if id(outcome) in recorded]

    def _record_chunk(self, settlement: Settlement, group: str, outcomes: list[JobOutcome],
                      now: float) -> list[JobOutcome]:
        pending = list(outcomes)
        for attempt in range(MAX_ATTEMPTS):
            if not pending:
                return []
            items, owners = self._transaction(settlement, group, pending, now)
            try:
                self._db.transact_write_items(TransactItems=items)
                return pending
            except StaleWrite as exc:
                # A job whose result exists was done by a duplicate delivery (or, for a typed job, its attempt is
                # no longer the running one): drop it, keep the rest.
                lost = {owners[i] for i, code in enumerate(exc.reasons) if code == "ConditionalCheckFailed"}
                if None in lost:
                    raise DependencyUnavailable(f"a settlement write of {group} failed its condition") from exc
                pending = [o for i, o in enumerate(pending) if i not in lost]
            except Contended:
                backoff(attempt)  # a conflict with a concurrent writer of the same counters
        raise DependencyUnavailable(f"could not record {len(pending)} outcomes for {group}")

    def _transaction(self, settlement: Settlement, group: str, outcomes: list[JobOutcome],
                     now: float) -> tuple[list[Write], list[int | None]]:
        """The transaction's items, and for each item the outcome it belongs to (None: the group's)."""
        settled = settlement.writes(group, outcomes, now)
        items: list[Write] = []
        owners: list[int | None] = []
        for index, (outcome, writes) in enumerate(zip(outcomes, settled.per_outcome, strict=True)):
            items.append({"Put": {
                "TableName": self._results,
                "Item": to_item({k: v for k, v in outcome.model_dump().items() if v is not None}),
                # The one condition that makes a job count once, however often it is delivered.
                "ConditionExpression": "attribute_not_exists(job_id)",
            }})
            items += writes
            owners += [index] * (1 + len(writes))
        items += settled.shared
        owners += [None] * len(settled.shared)
        return items, owners
