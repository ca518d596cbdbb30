"""DynamoDB adapters: the run repository and the result ledger.

State table layout (`pk`, `sk`):
  CURRENT        RUN              the current-run pointer: {run_id}
  RUN#<id>       META             the run (models.Run)
  RUN#<id>       SLICE#<start>    a claimed slice not yet known to be sent (the outbox)
  RUN#<id>       T#<epoch second> throughput bucket: enqueued/processed/failed, with TTL
Results table: one item per job id, written once (`attribute_not_exists`).
"""
from __future__ import annotations

import random
import time
from decimal import Decimal
from typing import Any, Sequence

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.jobs import backlog_item, backlog_key, iso_key, listing_attributes, schedule_key
from chalicelib.errors import DependencyUnavailable, DuplicateRequest, RunAlreadyActive, StaleWrite
from chalicelib.models import (BacklogItem, CallerCounts, ComputeRequest, JobOutcome, NumberRecord, Run, Slice,
                               TaskBacklogItem, TaskJob, TaskStats, ThroughputBucket, TimelineEntry, WorkerBeat)

BUCKET_TTL_S = 24 * 3600
BEAT_TTL_S = 24 * 3600
FAILURE_TTL_S = 14 * 24 * 3600  # as long as the DLQ keeps a message
MAX_TRANSACT_ITEMS = 100
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_decimals(value: Any) -> Any:
    """DynamoDB numbers are Decimals; floats (at any depth: a timeline's times) go in by their repr."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {key: _to_decimals(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_to_decimals(v) for v in value]
    return value


def _from_decimals(value: Any) -> Any:
    """Back to plain numbers, so untyped data (a job's payload or result) dumps to JSON as it came in."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _from_decimals(v) for key, v in value.items()}
    if isinstance(value, list):
        return [_from_decimals(v) for v in value]
    return value


def to_attr(value: Any) -> dict:
    return _serializer.serialize(_to_decimals(value))


def to_item(data: dict[str, Any]) -> dict[str, dict]:
    return {key: to_attr(value) for key, value in data.items()}


def from_item(item: dict[str, dict]) -> dict[str, Any]:
    return {key: _from_decimals(_deserializer.deserialize(value)) for key, value in item.items()}


def run_key(run_id: str) -> dict:
    return to_item({"pk": f"RUN#{run_id}", "sk": "META"})


def _cancellation_codes(exc: ClientError) -> list[str]:
    return [reason.get("Code", "None") for reason in exc.response.get("CancellationReasons", [])]


def _is_condition_failure(exc: ClientError) -> bool:
    code = exc.response["Error"]["Code"]
    if code == "ConditionalCheckFailedException":
        return True
    return code == "TransactionCanceledException" and "ConditionalCheckFailed" in _cancellation_codes(exc)


def _is_retryable(exc: ClientError) -> bool:
    code = exc.response["Error"]["Code"]
    if code == "TransactionCanceledException":
        return "TransactionConflict" in _cancellation_codes(exc) and not _is_condition_failure(exc)
    return code in ("TransactionConflictException", "ProvisionedThroughputExceededException", "ThrottlingException")


def _backoff(attempt: int) -> None:
    time.sleep(min(0.5, 0.01 * 2**attempt) * random.random())


def call_with_conflict_retry(operation, attempts: int = 8):
    """Run a DynamoDB write, retrying transaction conflicts and throttling; map condition failures to StaleWrite."""
    for attempt in range(attempts):
        try:
            return operation()
        except ClientError as exc:
            if _is_condition_failure(exc):
                raise StaleWrite(exc.response["Error"].get("Message", "condition failed")) from exc
            if not _is_retryable(exc) or attempt == attempts - 1:
                raise DependencyUnavailable(str(exc)) from exc
            _backoff(attempt)


def bucket_update(table: str, run_id: str, now: float, **counts: int) -> dict:
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


class DynamoRunRepository:
    def __init__(self, client, table_name: str):
        self._db = client
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

    def _update_run(self, run: Run, set_values: dict[str, Any], condition: str, condition_values: dict[str, Any]):
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


class DynamoResultLedger:
    """Writes outcomes and moves counters in one transaction, so each job counts exactly once."""

    def __init__(self, client, results_table: str, state_table: str, tasks_table: str | None = None):
        self._db = client
        self._results = results_table
        self._state = state_table
        self._tasks = tasks_table

    # Items per transaction: a run's outcomes leave room for its counters and throughput bucket; a compute
    # outcome takes 3 items; a typed job's 2 (its result and its job), plus the caller and two counters.
    _CHUNK = {"run": MAX_TRANSACT_ITEMS - 2, "compute": (MAX_TRANSACT_ITEMS - 1) // 3, "task": (MAX_TRANSACT_ITEMS - 3) // 2}

    def record(self, outcomes: Sequence[JobOutcome], now: float) -> int:
        by_run: dict[tuple[str, str], list[JobOutcome]] = {}
        for outcome in outcomes:
            by_run.setdefault((outcome.origin, outcome.run_id), []).append(outcome)
        recorded = 0
        for (origin, run_id), group in by_run.items():
            chunk = self._CHUNK[origin]
            recorded += sum(self._record_chunk(run_id, group[offset : offset + chunk], now)
                            for offset in range(0, len(group), chunk))
        return recorded

    def _record_chunk(self, run_id: str, outcomes: list[JobOutcome], now: float) -> int:
        pending = list(outcomes)
        for attempt in range(10):
            if not pending:
                return 0
            try:
                self._db.transact_write_items(TransactItems=self._transaction(run_id, pending, now))
                return len(pending)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    raise DependencyUnavailable(str(exc)) from exc
                codes = _cancellation_codes(exc)
                count = len(pending)
                failed = [i for i, code in enumerate(codes) if code == "ConditionalCheckFailed"]
                # A job that already has an outcome was done by a duplicate delivery: drop it, keep the rest.
                # (A typed job's settlement, at count + i, fails when that attempt is no longer running.)
                done_before = {i % count for i in failed if i < count or (pending[0].origin == "task" and i < 2 * count)}
                if done_before:
                    pending = [o for i, o in enumerate(pending) if i not in done_before]
                    continue
                _backoff(attempt)  # a conflict with a concurrent writer of the same counters
        raise DependencyUnavailable(f"could not record {len(pending)} outcomes for run {run_id}")

    def _transaction(self, run_id: str, outcomes: list[JobOutcome], now: float) -> list[dict]:
        done = sum(1 for o in outcomes if o.outcome == "done")
        failed = len(outcomes) - done
        puts = [
            {
                "Put": {
                    "TableName": self._results,
                    "Item": to_item({k: v for k, v in outcome.model_dump().items() if v is not None}),
                    # The one condition that makes a job count once, however often it is delivered.
                    "ConditionExpression": "attribute_not_exists(job_id)",
                }
            }
            for outcome in outcomes
        ]
        counters = {
            "TableName": self._state,
            "Key": run_key(run_id),
            "UpdateExpression": "SET updated_at = :now ADD #processed :done, #failed :failed, #settled :settled",
            "ExpressionAttributeNames": {"#processed": "processed", "#failed": "failed", "#settled": "settled"},
            "ExpressionAttributeValues": to_item({":now": now, ":done": done, ":failed": failed, ":settled": len(outcomes)}),
        }
        if outcomes[0].origin == "compute":
            return [*puts, *compute_settlement(self._state, run_id, outcomes)]
        if outcomes[0].origin == "task":
            return [*puts, *task_settlement(self._state, self._tasks, run_id, outcomes, now)]
        bucket = bucket_update(self._state, run_id, now, processed=done, failed=failed)
        return [*puts, {"Update": counters}, {"Update": bucket}]


class DynamoFleetStore:
    """Worker beats under pk=WORKERS; desired concurrency where the local runtime reads it."""

    CONCURRENCY = "RUNTIME#concurrency"  # infra/runtime's ConcurrencyControl reads this partition

    def __init__(self, client, table_name: str):
        self._db = client
        self._table = table_name

    def save_beat(self, beat: WorkerBeat) -> None:
        self._db.put_item(TableName=self._table, Item=to_item(
            {"pk": "WORKERS", "sk": beat.worker_id, **beat.model_dump(),
             "expires_at": int(beat.last_beat_at) + BEAT_TTL_S}))

    def beats(self) -> list[WorkerBeat]:
        found = self._db.query(TableName=self._table, KeyConditionExpression="pk = :pk",
                               ExpressionAttributeValues=to_item({":pk": "WORKERS"}))
        return [WorkerBeat.model_validate(from_item(item)) for item in found["Items"]]

    def set_concurrency(self, source: str, concurrency: int, now: float) -> None:
        self._db.put_item(TableName=self._table, Item=to_item(
            {"pk": self.CONCURRENCY, "sk": source, "maximum_concurrency": concurrency, "updated_at": now}))

    def concurrency(self, source: str) -> int | None:
        found = self._db.get_item(TableName=self._table, Key=to_item({"pk": self.CONCURRENCY, "sk": source}))
        return int(from_item(found["Item"])["maximum_concurrency"]) if "Item" in found else None


class DynamoFailureLog:
    """The last failure reason of each message that failed, for the DLQ view."""

    def __init__(self, client, table_name: str):
        self._db = client
        self._table = table_name

    def record(self, failures: list[tuple[str, int, str]], now: float) -> None:
        latest = {message_id: (count, reason) for message_id, count, reason in failures}
        requests = [
            {"PutRequest": {"Item": to_item({"pk": f"MSG#{message_id}", "sk": "FAILURE", "reason": reason[:1000],
                                             "receive_count": count, "at": now,
                                             "expires_at": int(now) + FAILURE_TTL_S})}}
            for message_id, (count, reason) in latest.items()
        ]
        for offset in range(0, len(requests), 25):
            pending = {self._table: requests[offset : offset + 25]}
            while pending:
                pending = self._db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None

    def reasons(self, message_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for offset in range(0, len(message_ids), 100):
            keys = [to_item({"pk": f"MSG#{m}", "sk": "FAILURE"}) for m in message_ids[offset : offset + 100]]
            pending = {self._table: {"Keys": keys}}
            while pending:
                response = self._db.batch_get_item(RequestItems=pending)
                for item in map(from_item, response["Responses"].get(self._table, [])):
                    found[item["pk"][4:]] = item["reason"]
                pending = response.get("UnprocessedKeys") or None
        return found


WAIT_TTL_S = 7 * 24 * 3600


def _number_key(number: str) -> dict:
    return to_item({"pk": f"CNUM#{number}", "sk": "NUM"})


def _caller_key(caller: str) -> dict:
    return to_item({"pk": "CALLERS", "sk": caller})


def _backlog_sk(item_id: str, submitted_at: float) -> str:
    return f"{submitted_at:017.6f}#{item_id}"


class DispatchCoordination:
    """A dispatcher's lease (one admitter at a time, with its round-robin cursor) and outbox, in one partition
    of the state table. Fair compute's store and the typed jobs' store each have their own partition."""

    DISPATCH_PK = ""

    def __init__(self, client, table_name: str):
        self._db = client
        self._table = table_name

    @property
    def _lease_key(self) -> dict:
        return to_item({"pk": self.DISPATCH_PK, "sk": "LEASE"})

    def _query(self, **kwargs) -> list[dict]:
        items, page = [], {}
        while True:
            response = self._db.query(TableName=self._table, **kwargs, **page)
            items += map(from_item, response["Items"])
            if "LastEvaluatedKey" not in response or ("Limit" in kwargs and len(items) >= kwargs["Limit"]):
                return items
            page = {"ExclusiveStartKey": response["LastEvaluatedKey"]}

    def take_lease(self, holder: str, now: float, ttl_s: float) -> int | None:
        try:
            found = self._db.update_item(
                TableName=self._table, Key=self._lease_key,
                UpdateExpression="SET holder = :holder, expires = :expires, again = :no",
                # One dispatcher at a time: two would admit the same backlog heads twice.
                ConditionExpression="attribute_not_exists(expires) OR expires < :now",
                ExpressionAttributeValues=to_item({":holder": holder, ":expires": now + ttl_s, ":now": now,
                                                   ":no": False}),
                ReturnValues="ALL_NEW")
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise DependencyUnavailable(str(exc)) from exc
            # Held: ask the holder to go round again, so this trigger is not lost.
            self._db.update_item(TableName=self._table, Key=self._lease_key, UpdateExpression="SET again = :yes",
                                 ExpressionAttributeValues=to_item({":yes": True}))
            return None
        return int(from_item(found["Attributes"]).get("cursor", 0))

    def release_lease(self, holder: str, cursor: int, now: float, ttl_s: float, final: bool = False) -> bool:
        values = {":zero": 0, ":cursor": cursor, ":holder": holder}
        try:
            self._db.update_item(
                TableName=self._table, Key=self._lease_key, UpdateExpression="SET expires = :zero, #cursor = :cursor",
                ConditionExpression="holder = :holder" + ("" if final else " AND again = :no"),
                ExpressionAttributeNames={"#cursor": "cursor"},
                ExpressionAttributeValues=to_item({**values, **({} if final else {":no": False})}))
            return True
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise DependencyUnavailable(str(exc)) from exc
        try:  # asked again while we held it (or we lost it): keep it for one more pass
            self._db.update_item(
                TableName=self._table, Key=self._lease_key,
                UpdateExpression="SET expires = :expires, #cursor = :cursor, again = :no",
                ConditionExpression="holder = :holder", ExpressionAttributeNames={"#cursor": "cursor"},
                ExpressionAttributeValues=to_item({":expires": now + ttl_s, ":cursor": cursor, ":holder": holder,
                                                   ":no": False}))
            return False
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise DependencyUnavailable(str(exc)) from exc
            return True  # lost by expiry: the next holder goes on

    def _outbox_put(self, key: str, body: str, now: float) -> dict:
        return {"Put": {"TableName": self._table,
                        "Item": to_item({"pk": self.DISPATCH_PK, "sk": key, "body": body, "created_at": now})}}

    def outbox(self, created_before: float) -> list[tuple[str, str]]:
        found = self._query(KeyConditionExpression="pk = :pk AND begins_with(sk, :out)",
                            ExpressionAttributeValues=to_item({":pk": self.DISPATCH_PK, ":out": "OUT#"}),
                            ConsistentRead=True)
        return [(item["sk"], item["body"]) for item in found if float(item["created_at"]) < created_before]

    def forget_outbox(self, keys: Sequence[str]) -> None:
        batch_delete(self._db, self._table, [{"pk": self.DISPATCH_PK, "sk": key} for key in keys])


def batch_delete(client, table: str, keys: list[dict]) -> None:
    requests = [{"DeleteRequest": {"Key": to_item(key)}} for key in keys]
    for offset in range(0, len(requests), 25):
        pending = {table: requests[offset : offset + 25]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None


class DynamoComputeStore(DispatchCoordination):
    """Fair compute's items in the state table (see the module docstring and docs/ARCHITECTURE.md)."""

    DISPATCH_PK = "CDISPATCH"
    CLAIMS_PER_TRANSACTION = 32  # 3 items each and one counter per caller: within DynamoDB's 100

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
        for offset in range(0, len(claiming), self.CLAIMS_PER_TRANSACTION):
            for request in self._claim(claiming[offset : offset + self.CLAIMS_PER_TRANSACTION]):
                stored[request.id] = request
        followers = [self._request_item(r) for r in stored.values() if not r.owner]
        for offset in range(0, len(followers), 25):
            pending = {self._table: [{"PutRequest": {"Item": item}} for item in followers[offset : offset + 25]]}
            while pending:
                pending = self._db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None
        return [stored[r.id] for r in requests]

    def _claim(self, owners: list[ComputeRequest]) -> list[ComputeRequest]:
        """Claim each request's number in one transaction. A number someone else claimed first makes that
        request a follower: the transaction is cancelled, names it, and is retried without it."""
        followers: list[ComputeRequest] = []
        attempt = 0
        while owners:
            try:
                self._db.transact_write_items(TransactItems=self._claim_items(owners))
                return owners + followers
            except ClientError as exc:
                codes = _cancellation_codes(exc)
                lost = {i // 3 for i, code in enumerate(codes) if code == "ConditionalCheckFailed" and i % 3 == 0
                        and i < 3 * len(owners)}
                if lost:
                    followers += [owners[i].model_copy(update={"owner": False}) for i in sorted(lost)]
                    owners = [r for i, r in enumerate(owners) if i not in lost]
                    continue
                if not _is_retryable(exc) or attempt == 7:
                    raise DependencyUnavailable(str(exc)) from exc
                _backoff(attempt)
                attempt += 1
        return followers

    def _claim_items(self, owners: list[ComputeRequest]) -> list[dict]:
        items = []
        for request in owners:  # three items per request, the claim first (see _claim)
            items += [
                {"Put": {
                    "TableName": self._table,
                    "Item": to_item({**_key_dict(_number_key(request.number)),
                                     **NumberRecord(number=request.number, status="pending",
                                                    job_id=request.id).model_dump(exclude_none=True)}),
                    # The dedup claim: only the first request for a number puts this item, and only it is computed.
                    "ConditionExpression": "attribute_not_exists(pk)",
                }},
                {"Put": {"TableName": self._table, "Item": self._request_item(request)}},
                {"Put": {"TableName": self._table, "Item": to_item({
                    "pk": f"CQ#{request.caller}", "sk": _backlog_sk(request.id, request.submitted_at),
                    **BacklogItem(id=request.id, number=request.number,
                                  submitted_at=request.submitted_at).model_dump()})}},
            ]
        for caller in sorted({r.caller for r in owners}):
            added = sum(1 for r in owners if r.caller == caller)
            items.append({"Update": {"TableName": self._table, "Key": _caller_key(caller),
                                     "UpdateExpression": "ADD backlog :added",
                                     "ExpressionAttributeValues": to_item({":added": added})}})
        return items

    def _request_item(self, request: ComputeRequest) -> dict:
        return to_item({"pk": f"CREQ#{request.id}", "sk": "REQ", **request.model_dump()})

    def request(self, request_id: str) -> ComputeRequest | None:
        found = self._db.get_item(TableName=self._table, Key=to_item({"pk": f"CREQ#{request_id}", "sk": "REQ"}))
        return ComputeRequest.model_validate(from_item(found["Item"])) if "Item" in found else None

    def number(self, number: str) -> NumberRecord | None:
        found = self._db.get_item(TableName=self._table, Key=_number_key(number), ConsistentRead=True)
        return NumberRecord.model_validate(from_item(found["Item"])) if "Item" in found else None

    def callers(self) -> list[CallerCounts]:
        found = self._query(KeyConditionExpression="pk = :pk", ExpressionAttributeValues=to_item({":pk": "CALLERS"}),
                            ConsistentRead=True)
        return [CallerCounts(caller=item["sk"], **{k: int(item.get(k, 0)) for k in ("backlog", "in_flight", "done", "failed")})
                for item in found]

    def waits(self, caller: str, limit: int) -> list[float]:
        found = self._query(KeyConditionExpression="pk = :pk", ExpressionAttributeValues=to_item({":pk": f"CWAIT#{caller}"}),
                            ScanIndexForward=False, Limit=limit)
        return [float(item["wait"]) for item in found[:limit]]

    def backlog(self, caller: str, limit: int) -> list[BacklogItem]:
        if limit <= 0:
            return []
        found = self._query(KeyConditionExpression="pk = :pk", ExpressionAttributeValues=to_item({":pk": f"CQ#{caller}"}),
                            ConsistentRead=True, Limit=limit)
        return [BacklogItem.model_validate(item) for item in found[:limit]]

    def admit(self, caller: str, items: Sequence[BacklogItem], body: str, now: float) -> str:
        key = f"OUT#{items[0].id}"
        transaction = [
            {"Delete": {"TableName": self._table,
                        "Key": to_item({"pk": f"CQ#{caller}", "sk": _backlog_sk(item.id, item.submitted_at)}),
                        # An item admitted already must not be sent again by this transaction.
                        "ConditionExpression": "attribute_exists(pk)"}}
            for item in items
        ] + [
            {"Update": {"TableName": self._table, "Key": _number_key(item.number),
                        "UpdateExpression": "SET #status = :running, admitted_at = :now",
                        "ConditionExpression": "#status = :pending",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": to_item({":running": "running", ":pending": "pending", ":now": now})}}
            for item in items
        ] + [
            {"Update": {"TableName": self._table, "Key": _caller_key(caller),
                        "UpdateExpression": "ADD backlog :minus, in_flight :plus",
                        "ExpressionAttributeValues": to_item({":minus": -len(items), ":plus": len(items)})}},
            self._outbox_put(key, body, now),
        ]
        call_with_conflict_retry(lambda: self._db.transact_write_items(TransactItems=transaction))
        return key


def _key_dict(key: dict) -> dict:
    return from_item(key)


def compute_settlement(state_table: str, caller: str, outcomes: Sequence[JobOutcome]) -> list[dict]:
    """The writes new compute outcomes make beside their result items: each number's record and a wait sample,
    and the caller's counters once (a transaction may touch an item once). They ride in the ledger's
    transaction, so they happen exactly when the results are new."""
    writes: list[dict] = []
    for outcome in outcomes:
        names = {"#status": "status", **({"#error": "error"} if outcome.error else {})}
        writes.append({"Update": {
            "TableName": state_table, "Key": _number_key(outcome.number),
            "UpdateExpression": "SET #status = :status, factors = :factors, finished_at = :at"
                                + (", #error = :error" if outcome.error else "") + " ADD computations :one",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": to_item({":status": outcome.outcome, ":factors": outcome.factors,
                                                  ":at": outcome.finished_at, ":one": 1,
                                                  **({":error": outcome.error} if outcome.error else {})}),
        }})
        if outcome.submitted_at is not None:
            writes.append({"Put": {"TableName": state_table, "Item": to_item({
                "pk": f"CWAIT#{caller}", "sk": f"{outcome.finished_at:017.6f}#{outcome.job_id}",
                "wait": outcome.finished_at - outcome.submitted_at,
                "expires_at": int(outcome.finished_at) + WAIT_TTL_S})}})
    done = sum(1 for o in outcomes if o.outcome == "done")
    writes.append({"Update": {
        "TableName": state_table, "Key": _caller_key(caller),
        "UpdateExpression": "ADD in_flight :minus, done :done, failed :failed",
        "ExpressionAttributeValues": to_item({":minus": -len(outcomes), ":done": done, ":failed": len(outcomes) - done}),
    }})
    return writes


# ---- typed jobs (issue #6) ----
#
# Tasks table: one item per job (models.TaskJob plus the listing attributes of jobs.listing_attributes).
# State table:
#   TQ#<caller>          <9-priority>#<created>#<id>   the caller's backlog: highest priority, then oldest, first
#   TSCHED               <due>#<id>                    jobs waiting for scheduled_for
#   TCALLERS             <caller>                      backlog, in_flight
#   TDISPATCH            LEASE | OUT#<id> | PAUSED     admission's lease and outbox; the admin's pause switch
#   TIDEM#<caller>#<key> IDEM                          an Idempotency-Key's claim: job id, body hash (TTL a day)
#   TSTATS               COUNTS#<shard>                jobs per status and per type, and in total
#   TSTATS               MIN#<minute>#<shard>          completed / failed that minute (TTL two hours)

STATS_SHARDS = 8  # counters spread over this many items, so concurrent writers rarely touch the same one
MINUTE_TTL_S = 2 * 3600
IDEMPOTENCY_TTL_S = 24 * 3600


def stats_update(state_table: str, statuses: dict[str, int] | None = None, types: dict[str, int] | None = None,
                 total: int = 0) -> dict | None:
    """An Update adding to one (random) shard of the job counters; None if nothing changes."""
    deltas = {**{f"s_{k}": v for k, v in (statuses or {}).items()}, **{f"t_{k}": v for k, v in (types or {}).items()},
              "total": total}
    deltas = {name: delta for name, delta in deltas.items() if delta}
    if not deltas:
        return None
    names = {f"#a{i}": name for i, name in enumerate(deltas)}
    return {"Update": {
        "TableName": state_table, "Key": to_item({"pk": "TSTATS", "sk": f"COUNTS#{random.randrange(STATS_SHARDS)}"}),
        "UpdateExpression": "ADD " + ", ".join(f"#a{i} :a{i}" for i in range(len(deltas))),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": to_item({f":a{i}": delta for i, delta in enumerate(deltas.values())}),
    }}


def minute_update(state_table: str, now: float, completed: int, failed: int) -> dict:
    minute = int(now) // 60 * 60
    return {"Update": {
        "TableName": state_table,
        "Key": to_item({"pk": "TSTATS", "sk": f"MIN#{minute:010d}#{random.randrange(STATS_SHARDS)}"}),
        "UpdateExpression": "SET expires_at = :expires ADD completed :completed, failed :failed",
        "ExpressionAttributeValues": to_item({":expires": minute + MINUTE_TTL_S, ":completed": completed,
                                              ":failed": failed}),
    }}


def _entry(status: str, at: float, worker: str | None, attempt: int, note: str | None) -> dict:
    return to_attr([TimelineEntry(status=status, at=at, worker=worker, attempt=attempt, note=note).model_dump()])


def _task_caller_update(state_table: str, caller: str, backlog: int = 0, in_flight: int = 0) -> dict:
    deltas = {name: delta for name, delta in (("backlog", backlog), ("in_flight", in_flight)) if delta}
    return {"Update": {
        "TableName": state_table, "Key": to_item({"pk": "TCALLERS", "sk": caller}),
        "UpdateExpression": "ADD " + ", ".join(f"{name} :{name}" for name in deltas),
        "ExpressionAttributeValues": to_item({f":{name}": delta for name, delta in deltas.items()}),
    }}


def task_settlement(state_table: str, tasks_table: str, caller: str, outcomes: Sequence[JobOutcome],
                    now: float) -> list[dict]:
    """The writes new typed-job outcomes make beside their result items: each job to completed or failed (with
    its timeline entry), the caller's in-flight count, the status counters and the minute's throughput. They
    ride in the ledger's transaction, so they happen exactly when the results are new. Job updates come first,
    in the outcomes' order (the ledger reads cancellation reasons by position)."""
    writes: list[dict] = []
    for outcome in outcomes:
        final = "completed" if outcome.outcome == "done" else "failed"
        if final == "completed":
            change, values = "#result = :result REMOVE #error", {":result": outcome.result or {}}
        else:
            change, values = "#error = :error REMOVE #result", {":error": outcome.error or "failed"}
        writes.append({"Update": {
            "TableName": tasks_table, "Key": to_item({"id": outcome.job_id}),
            "UpdateExpression": "SET #status = :final, place = :none, finished_at = :at, "
                                "timeline = list_append(timeline, :entry), " + change,
            # Only the attempt that is running settles: not a stale copy from before a takeover or a retry.
            "ConditionExpression": "#status = :running AND attempts = :attempt",
            "ExpressionAttributeNames": {"#status": "status", "#result": "result", "#error": "error"},
            "ExpressionAttributeValues": {
                **to_item({":final": final, ":none": "none", ":at": outcome.finished_at, ":running": "running",
                           ":attempt": outcome.attempt, **values}),
                ":entry": _entry(final, outcome.finished_at, outcome.worker, outcome.attempt,
                                 None if final == "completed" else (outcome.error or "")[:500]),
            },
        }})
    completed = sum(1 for o in outcomes if o.outcome == "done")
    failed = len(outcomes) - completed
    writes.append(_task_caller_update(state_table, caller, in_flight=-len(outcomes)))
    writes.append(stats_update(state_table, {"running": -len(outcomes), "completed": completed, "failed": failed}))
    writes.append(minute_update(state_table, now, completed, failed))
    return writes


def task_item(job: TaskJob, main_text: str) -> dict:
    """A job as its tasks-table item: the job, and the attributes its GSIs key on and `q` searches."""
    return to_item({**job.model_dump(exclude_none=True), **listing_attributes(job, main_text)})


class DynamoTaskStore(DispatchCoordination):
    """Typed jobs: job items in the tasks table; their backlogs, schedule, admission and counters in the state table."""

    DISPATCH_PK = "TDISPATCH"

    def __init__(self, client, tasks_table: str, state_table: str, results_table: str):
        super().__init__(client, state_table)
        self._tasks = tasks_table
        self._results = results_table

    # -- job items --

    def _job_key(self, job_id: str) -> dict:
        return to_item({"id": job_id})

    def _job_update(self, job_id: str, update: str, condition: str, values: dict, entry: dict | None = None) -> dict:
        attribute_values = to_item(values)
        if entry is not None:
            attribute_values[":entry"] = entry
        return {"TableName": self._tasks, "Key": self._job_key(job_id), "UpdateExpression": update,
                "ConditionExpression": condition, "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": attribute_values}

    def _transact(self, writes: list[dict | None]) -> None:
        items = [write for write in writes if write is not None]
        call_with_conflict_retry(lambda: self._db.transact_write_items(TransactItems=items))

    def _backlog_put(self, item: TaskBacklogItem) -> dict:
        return {"Put": {"TableName": self._table, "Item": to_item(
            {"pk": f"TQ#{item.caller}", "sk": backlog_key(item), **item.model_dump(exclude_none=True)})}}

    def _backlog_delete(self, item: TaskBacklogItem, condition: bool = True) -> dict:
        delete = {"TableName": self._table, "Key": to_item({"pk": f"TQ#{item.caller}", "sk": backlog_key(item)})}
        if condition:
            delete["ConditionExpression"] = "attribute_exists(pk)"  # admitted or cancelled already: not twice
        return {"Delete": delete}

    def _schedule_key(self, item: TaskBacklogItem) -> dict:
        return to_item({"pk": "TSCHED", "sk": schedule_key(item)})

    def create(self, job: TaskJob, main_text: str, idempotency: tuple[str, str, str] | None, now: float) -> TaskJob:
        item = backlog_item(job)
        writes: list[dict | None] = [
            {"Put": {"TableName": self._tasks, "Item": task_item(job, main_text),
                     "ConditionExpression": "attribute_not_exists(id)"}},
            stats_update(self._table, {"pending": 1}, {job.type: 1}, total=1),
        ]
        if job.place == "scheduled":
            writes.append({"Put": {"TableName": self._table,
                                   "Item": {**self._schedule_key(item), **to_item(item.model_dump(exclude_none=True))}}})
        else:
            writes += [self._backlog_put(item), _task_caller_update(self._table, job.caller, backlog=1)]
        if idempotency is not None:
            caller, key, body_hash = idempotency
            writes.append({"Put": {
                "TableName": self._table,
                "Item": to_item({"pk": f"TIDEM#{caller}#{key}", "sk": "IDEM", "job_id": job.id, "body_hash": body_hash,
                                 "expires_at": int(now) + IDEMPOTENCY_TTL_S}),
                # The one condition that makes a retried POST create nothing: the key is unclaimed or expired
                # (TTL deletes lazily, so an expired claim may still be there).
                "ConditionExpression": "attribute_not_exists(pk) OR expires_at < :now",
                "ExpressionAttributeValues": to_item({":now": int(now)}),
            }})
        try:
            self._transact(writes)
        except StaleWrite as exc:
            if idempotency is None:
                raise
            claim = self._db.get_item(TableName=self._table, ConsistentRead=True,
                                      Key=to_item({"pk": f"TIDEM#{idempotency[0]}#{idempotency[1]}", "sk": "IDEM"}))
            if "Item" not in claim:
                raise
            found = from_item(claim["Item"])
            raise DuplicateRequest(found["job_id"], found["body_hash"]) from exc
        return job

    def get(self, job_id: str) -> TaskJob | None:
        found = self._db.get_item(TableName=self._tasks, Key=self._job_key(job_id), ConsistentRead=True)
        return TaskJob.model_validate(from_item(found["Item"])) if "Item" in found else None

    def list(self, plan, start: dict[str, str] | None, limit: int) -> tuple[list[TaskJob], bool]:
        names = {"#h": plan.hash_attribute}
        values: dict[str, Any] = {":h": plan.hash_value}
        key = "#h = :h"
        if plan.range_between is not None or plan.range_prefix is not None:
            names["#r"] = plan.range_attribute
        if plan.range_between is not None:
            key += " AND #r BETWEEN :rlo AND :rhi"
            values.update({":rlo": plan.range_between[0], ":rhi": plan.range_between[1]})
        if plan.range_prefix is not None:
            key += " AND begins_with(#r, :rprefix)"
            values[":rprefix"] = plan.range_prefix
        filters = []
        if plan.type is not None:
            names["#type"] = "type"
            values[":type"] = plan.type
            filters.append("#type = :type")
        if plan.priority is not None:
            values[":priority"] = plan.priority
            filters.append("priority = :priority")
        if plan.created_between is not None:
            values.update({":clo": plan.created_between[0], ":chi": plan.created_between[1]})
            filters.append("created_key BETWEEN :clo AND :chi")
        if plan.q is not None:
            values[":q"] = plan.q
            names["#search"] = "search"
            filters.append("contains(#search, :q)")
        request = {"TableName": self._tasks, "IndexName": plan.index, "KeyConditionExpression": key,
                   "ExpressionAttributeNames": names, "ExpressionAttributeValues": to_item(values),
                   "ScanIndexForward": plan.forward}
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        # One more than the page, so that `more` is exact and the last page is never an empty one.
        matched: list[dict] = []
        page = {"ExclusiveStartKey": to_item(start)} if start else {}
        while len(matched) <= limit:
            wanted = limit + 1 - len(matched)
            # With a filter, DynamoDB's Limit counts the items read, not those kept: read bigger pages.
            response = self._db.query(**request, Limit=max(wanted, 200) if filters else wanted, **page)
            matched += response["Items"]
            if "LastEvaluatedKey" not in response:
                break
            page = {"ExclusiveStartKey": response["LastEvaluatedKey"]}
        return [TaskJob.model_validate(from_item(item)) for item in matched[:limit]], len(matched) > limit

    # -- status changes --

    def cancel(self, job: TaskJob, now: float) -> None:
        item = backlog_item(job)
        update = self._job_update(
            job.id, "SET #status = :cancelled, place = :none, finished_at = :now, timeline = list_append(timeline, :entry)",
            # Only where we saw it: if it was admitted or promoted meanwhile, the service reads it again.
            "#status = :pending AND place = :place",
            {":cancelled": "cancelled", ":none": "none", ":now": now, ":pending": "pending", ":place": job.place},
            _entry("cancelled", now, None, job.attempts, "cancelled"))
        writes: list[dict | None] = [{"Update": update},
                                     stats_update(self._table, {"pending": -1, "cancelled": 1})]
        if job.place == "queued":
            writes += [self._backlog_delete(item), _task_caller_update(self._table, job.caller, backlog=-1)]
        elif job.place == "scheduled":
            writes.append({"Delete": {"TableName": self._table, "Key": self._schedule_key(item),
                                      "ConditionExpression": "attribute_exists(pk)"}})
        elif job.place == "admitted":
            # Its message is in SQS: the worker that receives it skips it, so its slot is freed here.
            writes.append(_task_caller_update(self._table, job.caller, in_flight=-1))
        self._transact(writes)

    def start(self, job_id: str, attempt: int, worker: str, now: float) -> None:
        update = self._job_update(
            job_id, "SET #status = :running, place = :none, attempts = :attempt, started_at = :now, "
                    "timeline = list_append(timeline, :entry)",
            # The race with a cancel is decided here: exactly one of the two conditional writes lands.
            "#status = :pending AND place = :admitted AND attempts = :before",
            {":running": "running", ":none": "none", ":attempt": attempt, ":now": now, ":pending": "pending",
             ":admitted": "admitted", ":before": attempt - 1},
            _entry("running", now, worker, attempt, None))
        self._transact([{"Update": update}, stats_update(self._table, {"pending": -1, "running": 1})])

    def take_over(self, job_id: str, attempt: int, worker: str, now: float, started_before: float) -> None:
        update = self._job_update(
            job_id, "SET started_at = :now, timeline = list_append(timeline, :entry)",
            "#status = :running AND attempts = :attempt AND started_at < :stale",
            {":now": now, ":running": "running", ":attempt": attempt, ":stale": started_before},
            _entry("running", now, worker, attempt, "restarted: the worker that started this attempt did not settle it in time"))
        call_with_conflict_retry(lambda: self._db.update_item(**update))

    def requeue(self, job_id: str, attempt: int, worker: str, note: str, now: float) -> None:
        update = self._job_update(
            job_id, "SET #status = :pending, place = :admitted, #error = :error, timeline = list_append(timeline, :entry)",
            "#status = :running AND attempts = :attempt",
            {":pending": "pending", ":admitted": "admitted", ":error": note, ":running": "running", ":attempt": attempt},
            _entry("pending", now, worker, attempt, note))
        update["ExpressionAttributeNames"]["#error"] = "error"
        self._transact([{"Update": update}, stats_update(self._table, {"running": -1, "pending": 1})])

    def retry(self, job: TaskJob, now: float) -> None:
        requeued = job.model_copy(update={"place": "queued"})
        update = self._job_update(
            job.id, "SET #status = :pending, place = :queued, attempts = :zero, timeline = list_append(timeline, :entry) "
                    "REMOVE #error, #result, started_at, finished_at",
            "#status = :failed",
            {":pending": "pending", ":queued": "queued", ":zero": 0, ":failed": "failed"},
            _entry("pending", now, None, 0, "retried by admin"))
        update["ExpressionAttributeNames"].update({"#error": "error", "#result": "result"})
        self._transact([
            {"Update": update},
            # The failed outcome goes, so the ledger records the next one (its condition is "no result yet").
            {"Delete": {"TableName": self._results, "Key": to_item({"job_id": job.id})}},
            self._backlog_put(backlog_item(requeued)),
            _task_caller_update(self._table, job.caller, backlog=1),
            stats_update(self._table, {"failed": -1, "pending": 1}),
        ])

    # -- admission --

    def paused(self) -> bool:
        found = self._db.get_item(TableName=self._table, Key=to_item({"pk": self.DISPATCH_PK, "sk": "PAUSED"}),
                                  ConsistentRead=True)
        return bool(from_item(found["Item"]).get("paused")) if "Item" in found else False

    def set_paused(self, paused: bool, now: float) -> None:
        self._db.put_item(TableName=self._table, Item=to_item(
            {"pk": self.DISPATCH_PK, "sk": "PAUSED", "paused": paused, "updated_at": now}))

    def prepare_admission(self, now: float) -> bool:
        due = self._query(KeyConditionExpression="pk = :pk AND sk <= :now",
                          ExpressionAttributeValues=to_item({":pk": "TSCHED", ":now": iso_key(now) + "~"}),
                          ConsistentRead=True, Limit=100)
        for found in due[:100]:
            item = TaskBacklogItem.model_validate(found)
            queued = item.model_copy(update={"due": None})
            promote = self._job_update(item.id, "SET place = :queued", "#status = :pending AND place = :scheduled",
                                       {":queued": "queued", ":pending": "pending", ":scheduled": "scheduled"})
            try:
                self._transact([
                    {"Delete": {"TableName": self._table, "Key": self._schedule_key(item),
                                "ConditionExpression": "attribute_exists(pk)"}},
                    {"Update": promote},
                    self._backlog_put(queued),
                    _task_caller_update(self._table, item.caller, backlog=1),
                ])
            except StaleWrite:
                continue  # cancelled meanwhile
        return not self.paused()

    def due_by(self, until: float, limit: int) -> list[float]:
        found = self._query(KeyConditionExpression="pk = :pk AND sk <= :until",
                            ExpressionAttributeValues=to_item({":pk": "TSCHED", ":until": iso_key(until) + "~"}),
                            ProjectionExpression="due", Limit=limit)
        return [float(item["due"]) for item in found[:limit]]

    def callers(self) -> list[CallerCounts]:
        found = self._query(KeyConditionExpression="pk = :pk", ExpressionAttributeValues=to_item({":pk": "TCALLERS"}),
                            ConsistentRead=True)
        return [CallerCounts(caller=item["sk"], backlog=int(item.get("backlog", 0)),
                             in_flight=int(item.get("in_flight", 0))) for item in found]

    def backlog(self, caller: str, limit: int) -> list[TaskBacklogItem]:
        if limit <= 0:
            return []
        found = self._query(KeyConditionExpression="pk = :pk", ExpressionAttributeValues=to_item({":pk": f"TQ#{caller}"}),
                            ConsistentRead=True, Limit=limit)
        return [TaskBacklogItem.model_validate(item) for item in found[:limit]]

    def admit(self, caller: str, items: Sequence[TaskBacklogItem], body: str, now: float) -> str:
        key = f"OUT#{items[0].id}"
        writes: list[dict | None] = []
        for item in items:
            writes.append(self._backlog_delete(item))
            writes.append({"Update": self._job_update(item.id, "SET place = :admitted",
                                                      "#status = :pending AND place = :queued",
                                                      {":admitted": "admitted", ":pending": "pending", ":queued": "queued"})})
        writes += [_task_caller_update(self._table, caller, backlog=-len(items), in_flight=len(items)),
                   self._outbox_put(key, body, now)]
        self._transact(writes)
        return key

    # -- stats --

    def stats(self, since_minute: int, until_minute: int) -> TaskStats:
        counts = self._query(KeyConditionExpression="pk = :pk AND begins_with(sk, :counts)",
                             ExpressionAttributeValues=to_item({":pk": "TSTATS", ":counts": "COUNTS#"}))
        minutes = self._query(KeyConditionExpression="pk = :pk AND sk BETWEEN :since AND :until",
                              ExpressionAttributeValues=to_item({":pk": "TSTATS", ":since": f"MIN#{since_minute:010d}",
                                                                 ":until": f"MIN#{until_minute:010d}~"}))
        by_status: dict[str, int] = {}
        by_type: dict[str, int] = {}
        total = 0
        for shard in counts:
            for name, value in shard.items():
                if name.startswith("s_"):
                    by_status[name[2:]] = by_status.get(name[2:], 0) + int(value)
                elif name.startswith("t_"):
                    by_type[name[2:]] = by_type.get(name[2:], 0) + int(value)
            total += int(shard.get("total", 0))
        per_minute: dict[int, tuple[int, int]] = {}
        for shard in minutes:
            minute = int(shard["sk"].split("#")[1])
            done, failed = per_minute.get(minute, (0, 0))
            per_minute[minute] = (done + int(shard.get("completed", 0)), failed + int(shard.get("failed", 0)))
        return TaskStats(by_status=by_status, by_type=by_type, total=total, minutes=per_minute)
