"""Paced runs in DynamoDB (the state table).

  CURRENT        RUN              the current-run pointer: {run_id}
  RUN#<id>       META             the run (runs.models.Run)
  RUN#<id>       SLICE#<start>    a claimed slice not yet known to be sent (the outbox)
  RUN#<id>       T#<epoch second> throughput bucket: enqueued/processed/failed, with TTL
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from chalicelib.aws.clients import DynamoDBClient
from chalicelib.aws.codec import from_item, to_attr, to_item
from chalicelib.aws.retry import call_with_conflict_retry, domain_client
from chalicelib.core.errors import RunAlreadyActive, StaleWrite
from chalicelib.core.jobs import JobOutcome
from chalicelib.runs.models import Run, Slice, ThroughputBucket
from chalicelib.runs.store import RunStore
from chalicelib.worker.settlement import Settlement, SettlementWrites, Write

BUCKET_TTL_S = 24 * 3600


def run_key(run_id: str) -> dict[str, Any]:
    return to_item({"pk": f"RUN#{run_id}", "sk": "META"})


def bucket_update(table: str, run_id: str, now: float, **counts: int) -> dict[str, Any]:
    """An Update that adds `counts` to the run's throughput bucket for this second."""
    second = int(now)
    counts = {name: count for name, count in counts.items() if count}
    return {
        "TableName": table,
        "Key": to_item({"pk": f"RUN#{run_id}", "sk": f"T#{second:010d}"}),
        "UpdateExpression": "SET expires_at = :expires ADD " + ", ".join(f"#{name} :{name}" for name in counts),
        "ExpressionAttributeNames": {f"#{name}": name for name in counts},
        "ExpressionAttributeValues": to_item({":expires": second + BUCKET_TTL_S, **{f":{n}": c for n, c in counts.items()}}),
    }


class DynamoRunStore(RunStore):
    def __init__(self, client: DynamoDBClient, table_name: str):
        self._db = domain_client(client)
        self._table = table_name

    def current(self) -> Run | None:
        pointer = self._db.get_item(TableName=self._table, Key=to_item({"pk": "CURRENT", "sk": "RUN"}), ConsistentRead=True)
        if "Item" not in pointer:
            return None
        return self.get(from_item(pointer["Item"])["run_id"])

    def get(self, run_id: str) -> Run | None:
        found = self._db.get_item(TableName=self._table, Key=run_key(run_id), ConsistentRead=True)
        return Run.model_validate(from_item(found["Item"])) if "Item" in found else None

    def create_current(self, run: Run) -> None:
        previous = self.current()
        if previous is not None and previous.active:
            raise RunAlreadyActive(f"run {previous.run_id} is still running; stop it first (POST /api/stop)")
        pointer_update: dict[str, Any] = {
            "TableName": self._table,
            "Key": to_item({"pk": "CURRENT", "sk": "RUN"}),
            "UpdateExpression": "SET run_id = :new",
            "ExpressionAttributeValues": {":new": to_attr(run.run_id)},
        }
        items = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": to_item({"pk": f"RUN#{run.run_id}", "sk": "META", **run.model_dump()}),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {"Update": pointer_update},
        ]
        if previous is None:
            pointer_update["ConditionExpression"] = "attribute_not_exists(run_id)"
        else:
            # Both conditions guard the read above: nobody started another run, and
            # the previous run did not come back to life, since we looked.
            pointer_update["ConditionExpression"] = "run_id = :old"
            pointer_update["ExpressionAttributeValues"][":old"] = to_attr(previous.run_id)
            items.append(
                {
                    "ConditionCheck": {
                        "TableName": self._table,
                        "Key": run_key(previous.run_id),
                        "ConditionExpression": "#state <> :running OR settled >= #total",
                        "ExpressionAttributeNames": {"#state": "state", "#total": "total"},
                        "ExpressionAttributeValues": {":running": to_attr("running")},
                    }
                }
            )
        try:
            call_with_conflict_retry(lambda: self._db.transact_write_items(TransactItems=items))
        except StaleWrite as exc:
            raise RunAlreadyActive("another run was started at the same moment") from exc

    def _update_run(self, run: Run, set_values: dict[str, Any], condition: str,
                    condition_values: dict[str, Any]) -> dict[str, Any]:
        names = {f"#{key}": key for key in set_values}
        names["#state"] = "state"
        return {
            "TableName": self._table,
            "Key": run_key(run.run_id),
            "UpdateExpression": "SET " + ", ".join(f"#{key} = :{key}" for key in set_values),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {
                **{f":{key}": to_attr(value) for key, value in set_values.items()},
                **{key: to_attr(value) for key, value in condition_values.items()},
            },
        }

    def change_rate(self, run: Run, *, x: int, y: float, anchor_at: float, now: float) -> None:
        update = self._update_run(
            run,
            {"x": x, "y": y, "anchor_at": anchor_at, "anchor_index": run.enqueued, "updated_at": now},
            # Re-anchoring on a stale cursor would re-time jobs already sent.
            "#state = :running AND enqueued = :seen_enqueued",
            {":running": "running", ":seen_enqueued": run.enqueued},
        )
        call_with_conflict_retry(lambda: self._db.update_item(**update))

    def stop(self, run: Run, now: float) -> None:
        update = self._update_run(
            run, {"state": "stopped", "stopped_at": now, "updated_at": now, "tick_token": ""}, "#state = :running",
            {":running": "running"},
        )
        call_with_conflict_retry(lambda: self._db.update_item(**update))

    def _holds_clock(self) -> str:
        # anchor_at moves with every rate change: a plan made on the old rate must not land.
        return ("#state = :running AND tick_token = :seen_token AND enqueued = :seen_enqueued"
                " AND anchor_at = :seen_anchor")

    def advance(self, run: Run, *, end: int, next_token: str, now: float) -> None:
        seen = {":running": "running", ":seen_token": run.tick_token, ":seen_enqueued": run.enqueued,
                ":seen_anchor": run.anchor_at}
        if end <= run.enqueued:
            update = self._update_run(run, {"tick_token": next_token, "tick_at": now}, self._holds_clock(), seen)
            call_with_conflict_retry(lambda: self._db.update_item(**update))
            return
        claim = self._update_run(
            run, {"enqueued": end, "tick_token": next_token, "tick_at": now, "updated_at": now},
            self._holds_clock(), seen,
        )
        outbox = {
            "TableName": self._table,
            "Item": to_item(
                {"pk": f"RUN#{run.run_id}", "sk": f"SLICE#{run.enqueued:012d}", "run_id": run.run_id,
                 "start": run.enqueued, "end": end, "created_at": now}
            ),
        }
        items = [{"Update": claim}, {"Put": outbox}, {"Update": bucket_update(self._table, run.run_id, now, enqueued=end - run.enqueued)}]
        call_with_conflict_retry(lambda: self._db.transact_write_items(TransactItems=items))

    def replace_token(self, run: Run, *, next_token: str, now: float) -> None:
        update = self._update_run(
            run, {"tick_token": next_token, "tick_at": now}, "#state = :running AND tick_token = :seen_token",
            {":running": "running", ":seen_token": run.tick_token},
        )
        call_with_conflict_retry(lambda: self._db.update_item(**update))

    def slices(self, run_id: str) -> list[Slice]:
        found = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues=to_item({":pk": f"RUN#{run_id}", ":prefix": "SLICE#"}),
            ConsistentRead=True,
        )
        return [Slice.model_validate(from_item(item)) for item in found["Items"]]

    def forget_slice(self, run_id: str, start: int) -> None:
        self._db.delete_item(TableName=self._table, Key=to_item({"pk": f"RUN#{run_id}", "sk": f"SLICE#{start:012d}"}))

    def throughput(self, run_id: str, since: int, until: int) -> list[ThroughputBucket]:
        found = self._db.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :since AND :until",
            ExpressionAttributeValues=to_item({":pk": f"RUN#{run_id}", ":since": f"T#{since:010d}", ":until": f"T#{until:010d}"}),
        )
        return [ThroughputBucket.model_validate({"t": int(item["sk"][2:]), **item}) for item in map(from_item, found["Items"])]


class RunSettlement(Settlement):
    """What new outcomes of a run write beside their result items: the run's counters and this second's bucket."""

    items_per_outcome = 0
    shared_items = 2
    common_items = 0

    def __init__(self, state_table: str):
        self._state = state_table

    def writes(self, groups: Mapping[str, Sequence[JobOutcome]], now: float) -> SettlementWrites:
        settled = SettlementWrites(per_outcome=[])
        for run_id, outcomes in groups.items():
            done = sum(1 for o in outcomes if o.outcome == "done")
            failed = len(outcomes) - done
            settled.per_outcome += [[] for _ in outcomes]
            settled.shared += [
                {"Update": {
                    "TableName": self._state,
                    "Key": run_key(run_id),
                    "UpdateExpression": "SET updated_at = :now "
                                        "ADD #processed :done, #failed :failed, #settled :settled",
                    "ExpressionAttributeNames": {"#processed": "processed", "#failed": "failed", "#settled": "settled"},
                    "ExpressionAttributeValues": to_item({":now": now, ":done": done, ":failed": failed,
                                                          ":settled": len(outcomes)}),
                }},
                {"Update": bucket_update(self._state, run_id, now, processed=done, failed=failed)},
            ]
        return settled
