"""Fair compute in DynamoDB (the state table).

  CNUM#<number>   NUM                    the number's one record: status, factors, the owner's backlog place (the
                                         dedup claim; `running` is not stored: pending and out of the backlog)
  CREQ#<id>       REQ                    a request
  CQ#<caller>     <submitted>#<id>       the caller's backlog, oldest first
  CALLERS         <caller>               backlog, in_flight, done, failed
  CWAIT#<caller>  <finished>#<id>        a settlement's jobs: their queue waits (callers/dynamo.py; TTL a week)
  CDISPATCH       LEASE | OUT#<id>       admission's lease and outbox
"""
from __future__ import annotations

from typing import AbstractSet, Any, Iterator, Mapping, Sequence

from chalicelib.admission.dynamo import DispatchCoordination, caller_counts_update
from chalicelib.aws.codec import from_item, to_item
from chalicelib.aws.retry import MAX_ATTEMPTS, MAX_TRANSACT_ITEMS, backoff, batch_put
from chalicelib.callers.dynamo import latest_settled, settled_put
from chalicelib.callers.models import Settled
from chalicelib.compute.models import ComputeBacklogItem, ComputeRequest, NumberRecord
from chalicelib.compute.store import ComputeStore
from chalicelib.core.errors import Contended, StaleWrite
from chalicelib.core.jobs import JobOutcome
from chalicelib.worker.settlement import Settlement, SettlementWrites, Write

def _number_key(number: str) -> dict[str, str]:
    return {"pk": f"CNUM#{number}", "sk": "NUM"}


def _backlog_sk(item_id: str, submitted_at: float) -> str:
    return f"{submitted_at:017.6f}#{item_id}"


class DynamoComputeStore(DispatchCoordination, ComputeStore):
    """Fair compute's items in the state table (see the module docstring and docs/ARCHITECTURE.md)."""

    CALLERS_PK = "CALLERS"
    DISPATCH_PK = "CDISPATCH"
    ITEMS_PER_CLAIM = 3  # the claim, the request and the backlog item; and each caller's counter once

    def submit(self, request: ComputeRequest, now: float) -> ComputeRequest:
        return self.submit_many([request], now)[0]

    def submit_many(self, requests: Sequence[ComputeRequest], now: float) -> list[ComputeRequest]:
        stored: dict[str, ComputeRequest] = {}
        claiming: list[ComputeRequest] = []
        for request in requests:  # a number repeated within the call is claimed by its first request only
            if any(r.number == request.number for r in claiming):
                stored[request.id] = request.model_copy(update={"owner": False})
            else:
                claiming.append(request.model_copy(update={"owner": True}))
        for owners in self._claim_groups(claiming):
            for request in self._claim(owners):
                stored[request.id] = request
        batch_put(self._db, self._table, [self._request_item(r) for r in stored.values() if not r.owner])
        return [stored[r.id] for r in requests]

    def _claim_groups(self, claiming: list[ComputeRequest]) -> Iterator[list[ComputeRequest]]:
        """The claims in transactions of up to DynamoDB's 100 items, each caller's counter once in each."""
        group: list[ComputeRequest] = []
        callers: set[str] = set()
        for request in claiming:
            if group and self.ITEMS_PER_CLAIM * (len(group) + 1) + len(callers | {request.caller}) > MAX_TRANSACT_ITEMS:
                yield group
                group, callers = [], set()
            group.append(request)
            callers.add(request.caller)
        if group:
            yield group

    def _claim(self, owners: list[ComputeRequest]) -> list[ComputeRequest]:
        """Claim each request's number in one transaction. A number someone else claimed first makes that
        request a follower: the transaction is cancelled, names it, and is retried without it."""
        followers: list[ComputeRequest] = []
        attempt = 0
        while owners:
            try:
                self._db.transact_write_items(TransactItems=self._claim_items(owners))
                return owners + followers
            except StaleWrite as exc:
                per = self.ITEMS_PER_CLAIM
                lost = {i // per for i, code in enumerate(exc.reasons)
                        if code == "ConditionalCheckFailed" and i % per == 0 and i < per * len(owners)}
                if not lost:
                    raise
                followers += [owners[i].model_copy(update={"owner": False}) for i in sorted(lost)]
                owners = [r for i, r in enumerate(owners) if i not in lost]
            except Contended:
                attempt += 1
                if attempt == MAX_ATTEMPTS:
                    raise
                backoff(attempt)
        return followers

    def _claim_items(self, owners: list[ComputeRequest]) -> list[dict[str, Any]]:
        items = []
        for request in owners:  # ITEMS_PER_CLAIM items per request, the claim first (see _claim)
            items += [
                {"Put": {
                    "TableName": self._table,
                    "Item": to_item({**_number_key(request.number),
                                     **NumberRecord(number=request.number, status="pending", job_id=request.id,
                                                    caller=request.caller, submitted_at=request.submitted_at
                                                    ).model_dump(exclude_none=True)}),
                    # The dedup claim: only the first request for a number puts this item, and only it is computed.
                    "ConditionExpression": "attribute_not_exists(pk)",
                }},
                {"Put": {"TableName": self._table, "Item": self._request_item(request)}},
                {"Put": {"TableName": self._table, "Item": to_item({
                    "pk": f"CQ#{request.caller}", "sk": _backlog_sk(request.id, request.submitted_at),
                    **ComputeBacklogItem(id=request.id, number=request.number, submitted_at=request.submitted_at,
                                         correlation_id=request.correlation_id).model_dump()})}},
            ]
        for caller in sorted({r.caller for r in owners}):
            added = sum(1 for r in owners if r.caller == caller)
            items.append(caller_counts_update(self._table, self.CALLERS_PK, caller, backlog=added))
        return items

    def _request_item(self, request: ComputeRequest) -> dict[str, Any]:
        return to_item({"pk": f"CREQ#{request.id}", "sk": "REQ", **request.model_dump()})

    def request(self, request_id: str) -> ComputeRequest | None:
        found = self._db.get_item(TableName=self._table, Key=to_item({"pk": f"CREQ#{request_id}", "sk": "REQ"}))
        return ComputeRequest.model_validate(from_item(found["Item"])) if "Item" in found else None

    def number(self, number: str) -> NumberRecord | None:
        found = self._db.get_item(TableName=self._table, Key=to_item(_number_key(number)), ConsistentRead=True)
        if "Item" not in found:
            return None
        record = NumberRecord.model_validate(from_item(found["Item"]))
        if record.status == "pending" and record.caller is not None and record.submitted_at is not None:
            place = to_item({"pk": f"CQ#{record.caller}", "sk": _backlog_sk(record.job_id, record.submitted_at)})
            waiting = self._db.get_item(TableName=self._table, Key=place, ConsistentRead=True,
                                        ProjectionExpression="pk")
            if "Item" not in waiting:  # admitted: on the jobs queue or being computed
                record = record.model_copy(update={"status": "running"})
        return record

    def settled(self, caller: str, limit: int) -> list[Settled]:
        return latest_settled(self._db, self._table, f"CWAIT#{caller}", limit)

    def backlog(self, caller: str, limit: int, skip: AbstractSet[str] = frozenset()) -> list[ComputeBacklogItem]:
        """Compute numbers are under no rate limit: `skip` never applies."""
        return [ComputeBacklogItem.model_validate(item)
                for item in self._partition(f"CQ#{caller}", limit, ConsistentRead=True)]

    def _admission_writes(self, caller: str, item: ComputeBacklogItem, now: float) -> list[dict[str, Any]]:
        """The backlog item's delete, and nothing on the number: out of the backlog is what makes it running
        (`number`), and its message carries the admission time to the settlement, which records it."""
        return [
            {"Delete": {"TableName": self._table,
                        "Key": to_item({"pk": f"CQ#{caller}", "sk": _backlog_sk(item.id, item.submitted_at)}),
                        # An item admitted already must not be sent again by this transaction.
                        "ConditionExpression": "attribute_exists(pk)"}},
        ]


class ComputeSettlement(Settlement):
    """The writes new compute outcomes make beside their result items: each number's record, and once for each
    group (a transaction may touch an item once) the caller's counters and the settled sample. They ride in the
    ledger's transaction, so they happen exactly when the results are new."""

    items_per_outcome = 1
    shared_items = 2
    common_items = 0

    def __init__(self, state_table: str):
        self._state = state_table

    def writes(self, groups: Mapping[str, Sequence[JobOutcome]], now: float) -> SettlementWrites:
        settled = SettlementWrites(per_outcome=[])
        for group, outcomes in groups.items():
            settled.per_outcome += [[self._number_record(outcome)] for outcome in outcomes]
            done = sum(1 for o in outcomes if o.outcome == "done")
            settled.shared += [
                caller_counts_update(self._state, DynamoComputeStore.CALLERS_PK, group, in_flight=-len(outcomes),
                                     done=done, failed=len(outcomes) - done),
                settled_put(self._state, f"CWAIT#{group}", outcomes),
            ]
        return settled

    def _number_record(self, outcome: JobOutcome) -> Write:
        """The number's settled record, written whole. Only its owner's job computes a number, and the ledger settles
        a job once, so nothing else writes the record between the claim and this. A Put costs AWS what an
        UpdateItem does; in moto it costs a fifth of one, which parses, validates and applies an expression (a
        quarter of the emulator's busy time under the batch endpoint)."""
        record = NumberRecord(number=outcome.number or "", status=outcome.outcome, job_id=outcome.job_id,
                              caller=outcome.group, submitted_at=outcome.submitted_at, factors=outcome.factors,
                              error=outcome.error, computations=1, admitted_at=outcome.admitted_at,
                              finished_at=outcome.finished_at)
        return {"Put": {"TableName": self._state, "Item": to_item({**_number_key(record.number),
                                                                   **record.model_dump(exclude_none=True)})}}
