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

from chalicelib.errors import DependencyUnavailable, RunAlreadyActive, StaleWrite
from chalicelib.models import (BacklogItem, CallerCounts, ComputeRequest, JobOutcome, NumberRecord, Run, Slice,
                               ThroughputBucket, WorkerBeat)

BUCKET_TTL_S = 24 * 3600
BEAT_TTL_S = 24 * 3600
FAILURE_TTL_S = 14 * 24 * 3600  # as long as the DLQ keeps a message
MAX_TRANSACT_ITEMS = 100
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_attr(value: Any) -> dict:
    if isinstance(value, float):
        value = Decimal(repr(value))
    return _serializer.serialize(value)


def to_item(data: dict[str, Any]) -> dict[str, dict]:
    return {key: to_attr(value) for key, value in data.items()}


def from_item(item: dict[str, dict]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


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

    def __init__(self, client, results_table: str, state_table: str):
        self._db = client
        self._results = results_table
        self._state = state_table

    def record(self, outcomes: Sequence[JobOutcome], now: float) -> int:
        by_run: dict[tuple[str, str], list[JobOutcome]] = {}
        for outcome in outcomes:
            by_run.setdefault((outcome.origin, outcome.run_id), []).append(outcome)
        recorded = 0
        for (origin, run_id), group in by_run.items():
            # A run's chunk leaves room for its counters and throughput bucket; a compute outcome takes 3 items.
            chunk = MAX_TRANSACT_ITEMS - 2 if origin == "run" else (MAX_TRANSACT_ITEMS - 1) // 3
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
                # A job that already has an outcome was done by a duplicate delivery: drop it, keep the rest.
                done_before = {i for i, code in enumerate(codes[: len(pending)]) if code == "ConditionalCheckFailed"}
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


class DynamoComputeStore:
    """Fair compute's items in the state table (see the module docstring and docs/ARCHITECTURE.md)."""

    LEASE = {"pk": "CDISPATCH", "sk": "LEASE"}

    def __init__(self, client, table_name: str):
        self._db = client
        self._table = table_name

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

    def _query(self, **kwargs) -> list[dict]:
        items, page = [], {}
        while True:
            response = self._db.query(TableName=self._table, **kwargs, **page)
            items += map(from_item, response["Items"])
            if "LastEvaluatedKey" not in response or ("Limit" in kwargs and len(items) >= kwargs["Limit"]):
                return items
            page = {"ExclusiveStartKey": response["LastEvaluatedKey"]}

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

    def take_lease(self, holder: str, now: float, ttl_s: float) -> int | None:
        try:
            found = self._db.update_item(
                TableName=self._table, Key=to_item(self.LEASE),
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
            self._db.update_item(TableName=self._table, Key=to_item(self.LEASE), UpdateExpression="SET again = :yes",
                                 ExpressionAttributeValues=to_item({":yes": True}))
            return None
        return int(from_item(found["Attributes"]).get("cursor", 0))

    def release_lease(self, holder: str, cursor: int, now: float, ttl_s: float, final: bool = False) -> bool:
        values = {":zero": 0, ":cursor": cursor, ":holder": holder}
        try:
            self._db.update_item(
                TableName=self._table, Key=to_item(self.LEASE), UpdateExpression="SET expires = :zero, #cursor = :cursor",
                ConditionExpression="holder = :holder" + ("" if final else " AND again = :no"),
                ExpressionAttributeNames={"#cursor": "cursor"},
                ExpressionAttributeValues=to_item({**values, **({} if final else {":no": False})}))
            return True
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise DependencyUnavailable(str(exc)) from exc
        try:  # asked again while we held it (or we lost it): keep it for one more pass
            self._db.update_item(
                TableName=self._table, Key=to_item(self.LEASE),
                UpdateExpression="SET expires = :expires, #cursor = :cursor, again = :no",
                ConditionExpression="holder = :holder", ExpressionAttributeNames={"#cursor": "cursor"},
                ExpressionAttributeValues=to_item({":expires": now + ttl_s, ":cursor": cursor, ":holder": holder,
                                                   ":no": False}))
            return False
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise DependencyUnavailable(str(exc)) from exc
            return True  # lost by expiry: the next holder goes on

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
            {"Put": {"TableName": self._table, "Item": to_item({"pk": "CDISPATCH", "sk": key, "body": body, "created_at": now})}},
        ]
        call_with_conflict_retry(lambda: self._db.transact_write_items(TransactItems=transaction))
        return key

    def outbox(self, created_before: float) -> list[tuple[str, str]]:
        found = self._query(KeyConditionExpression="pk = :pk AND begins_with(sk, :out)",
                            ExpressionAttributeValues=to_item({":pk": "CDISPATCH", ":out": "OUT#"}), ConsistentRead=True)
        return [(item["sk"], item["body"]) for item in found if float(item["created_at"]) < created_before]

    def forget_outbox(self, keys: Sequence[str]) -> None:
        requests = [{"DeleteRequest": {"Key": to_item({"pk": "CDISPATCH", "sk": key})}} for key in keys]
        for offset in range(0, len(requests), 25):
            pending = {self._table: requests[offset : offset + 25]}
            while pending:
                pending = self._db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None


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
