"""The result ledger in DynamoDB: one result item per job id, written once, with its origin's settlement."""
from __future__ import annotations

from typing import Iterator, Mapping, Sequence

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
        by_origin: dict[Origin, list[JobOutcome]] = {}
        for outcome in outcomes:
            by_origin.setdefault(outcome.origin, []).append(outcome)
        recorded: set[int] = set()
        for origin, origin_outcomes in by_origin.items():
            settlement = self._settlements[origin]
            for chunk in _chunks(settlement, origin_outcomes):
                recorded.update(map(id, self._record_chunk(settlement, chunk, now)))
        return [outcome for outcome in outcomes if id(outcome) in recorded]

    def _record_chunk(self, settlement: Settlement, outcomes: list[JobOutcome], now: float) -> list[JobOutcome]:
        pending = list(outcomes)
        for attempt in range(MAX_ATTEMPTS):
            if not pending:
                return []
            items, owners = self._transaction(settlement, pending, now)
            try:
                self._db.transact_write_items(TransactItems=items)
                return pending
            except StaleWrite as exc:
                # A job whose result exists was done by a duplicate delivery (or, for a typed job, its attempt is
                # no longer the running one): drop it, keep the rest.
                lost = {owners[i] for i, code in enumerate(exc.reasons) if code == "ConditionalCheckFailed"}
                if None in lost:
                    raise DependencyUnavailable(f"a settlement write of {_groups(pending)} failed its condition"
                                                ) from exc
                pending = [o for i, o in enumerate(pending) if i not in lost]
            except Contended:
                backoff(attempt)  # a conflict with a concurrent writer of the same counters
        raise DependencyUnavailable(f"could not record {len(pending)} outcomes for {_groups(pending)}")

    def _transaction(self, settlement: Settlement, outcomes: list[JobOutcome],
                     now: float) -> tuple[list[Write], list[int | None]]:
        """The transaction's items, and for each item the index in `outcomes` of the outcome it belongs to (None:
        shared by its groups). The settlement lists its writes group by group, in whatever order `outcomes` are."""
        groups: dict[str, list[int]] = {}
        for index, outcome in enumerate(outcomes):
            groups.setdefault(outcome.group, []).append(index)
        settled = settlement.writes({group: [outcomes[i] for i in indices] for group, indices in groups.items()}, now)
        items: list[Write] = []
        owners: list[int | None] = []
        in_settlement_order = [index for indices in groups.values() for index in indices]
        for index, writes in zip(in_settlement_order, settled.per_outcome, strict=True):
            outcome = outcomes[index]
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


def _chunks(settlement: Settlement, outcomes: Sequence[JobOutcome]) -> Iterator[list[JobOutcome]]:
    """One origin's outcomes, grouped, in transactions of up to 100 items: as many groups in each as fit."""
    by_group: dict[str, list[JobOutcome]] = {}
    for outcome in outcomes:
        by_group.setdefault(outcome.group, []).append(outcome)
    chunk: list[JobOutcome] = []
    items = settlement.common_items
    for group_outcomes in by_group.values():
        items += settlement.shared_items
        for outcome in group_outcomes:
            if chunk and items + 1 + settlement.items_per_outcome > MAX_TRANSACT_ITEMS:
                yield chunk
                chunk, items = [], settlement.common_items + settlement.shared_items
            chunk.append(outcome)
            items += 1 + settlement.items_per_outcome
    if chunk:
        yield chunk


def _groups(outcomes: Sequence[JobOutcome]) -> str:
    return ", ".join(dict.fromkeys(outcome.group for outcome in outcomes))
