"""Typed jobs in DynamoDB.

Typed-jobs table: one item per job (typed.models.TypedJob plus the listing attributes of
typed.keys.listing_attributes). State table:
  TQ#<caller>          <9-priority>#<created>#<id>   the caller's backlog: highest priority, then oldest, first
  BQ#<caller>, BCALLERS                              the same for jobs whose target is a bot (bots/dynamo.py)
  TSCHED               <due>#<id>                    jobs waiting for scheduled_for
  TCALLERS             <caller>                      backlog, in_flight, done, failed
  TWAIT#<caller>       <finished>#<id>               a settlement's jobs: their queue waits (callers/dynamo.py; TTL a week)
  TDISPATCH            LEASE | OUT#<id>              admission's lease (with the rate limits and the pause switch) and outbox
  TIDEM#<caller>#<key> IDEM                          an Idempotency-Key's claim: job id, body hash (TTL a day)
  TSTATS               COUNTS#<shard>                jobs per status and per type, and in total
  TSTATS               MIN#<minute>#<shard>          completed / failed that minute (TTL two hours)
"""
from __future__ import annotations

import builtins
import random
from typing import AbstractSet, Any, Mapping, Sequence

from chalicelib.admission.dynamo import DispatchCoordination, caller_counts_update
from chalicelib.admission.models import held_types
from chalicelib.aws.clients import DynamoDBClient
from chalicelib.aws.codec import from_item, to_attr, to_item
from chalicelib.aws.retry import MAX_TRANSACT_ITEMS, call_with_conflict_retry
from chalicelib.callers.dynamo import latest_settled, settled_put
from chalicelib.callers.models import Settled
from chalicelib.core.errors import DuplicateRequest, StaleWrite
from chalicelib.core.jobs import JobOutcome
from chalicelib.core.times import iso_key
from chalicelib.typed.keys import (
    backlog_item,
    backlog_key,
    backlog_partition,
    callers_partition,
    listing_attributes,
    schedule_key,
)
from chalicelib.typed.listing import ListPlan
from chalicelib.typed.models import TimelineEntry, TypedBacklogItem, TypedJob, TypedJobStats, TypedJobStatus
from chalicelib.typed.store import TypedJobStore
from chalicelib.worker.settlement import Settlement, SettlementWrites, Write

STATS_SHARDS = 8  # counters spread over this many items, so concurrent writers rarely touch the same one

MINUTE_TTL_S = 2 * 3600

IDEMPOTENCY_TTL_S = 24 * 3600


TYPED_DISPATCH_PK = "TDISPATCH"  # typed admission's lease (with the rate limits and the pause switch), outbox


def stats_update(state_table: str, statuses: dict[str, int] | None = None, types: dict[str, int] | None = None,
                 total: int = 0) -> dict[str, Any] | None:
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


def minute_update(state_table: str, now: float, completed: int, failed: int) -> dict[str, Any]:
    minute = int(now) // 60 * 60
    return {"Update": {
        "TableName": state_table,
        "Key": to_item({"pk": "TSTATS", "sk": f"MIN#{minute:010d}#{random.randrange(STATS_SHARDS)}"}),
        "UpdateExpression": "SET expires_at = :expires ADD completed :completed, failed :failed",
        "ExpressionAttributeValues": to_item({":expires": minute + MINUTE_TTL_S, ":completed": completed,
                                              ":failed": failed}),
    }}


def timeline_entry(status: TypedJobStatus, at: float, worker: str | None, attempt: int,
                   note: str | None) -> dict[str, Any]:
    """A timeline entry as the value `list_append` adds to a job's timeline."""
    return to_attr([TimelineEntry(status=status, at=at, worker=worker, attempt=attempt, note=note).model_dump()])


class TypedJobSettlement(Settlement):
    """The writes new typed-job outcomes make beside their result items: each job to completed or failed (with
    its timeline entry); once for each group, the caller's counts and the settled sample; once for the
    transaction, the status counters and the minute's throughput. They ride in the ledger's transaction, so
    they happen exactly when the results are new."""

    items_per_outcome = 1
    shared_items = 2  # the caller's counts and the settled sample
    common_items = 2  # the status counters and the minute's throughput

    def __init__(self, state_table: str, typed_jobs_table: str, callers: str = "TCALLERS") -> None:
        self._state = state_table
        self._typed_jobs = typed_jobs_table
        self._callers = callers  # whose in-flight count the outcomes free: admission's, or the bots' (BCALLERS)

    def writes(self, groups: Mapping[str, Sequence[JobOutcome]], now: float) -> SettlementWrites:
        settled = SettlementWrites(per_outcome=[])
        for group, outcomes in groups.items():
            settled.per_outcome += [[self._job_update(outcome)] for outcome in outcomes]
            completed = sum(1 for o in outcomes if o.outcome == "done")
            settled.shared += [caller_counts_update(self._state, self._callers, group, in_flight=-len(outcomes),
                                                    done=completed, failed=len(outcomes) - completed),
                               settled_put(self._state, f"TWAIT#{group}", outcomes)]
        outcomes = [outcome for group_outcomes in groups.values() for outcome in group_outcomes]
        completed = sum(1 for o in outcomes if o.outcome == "done")
        failed = len(outcomes) - completed
        common = [stats_update(self._state, {"running": -len(outcomes), "completed": completed, "failed": failed}),
                  minute_update(self._state, now, completed, failed)]
        settled.shared += [write for write in common if write is not None]
        return settled

    def _job_update(self, outcome: JobOutcome) -> Write:
        final: TypedJobStatus = "completed" if outcome.outcome == "done" else "failed"
        values: dict[str, Any]  # the result (a dict) or the error (a str)
        if final == "completed":
            change, values = "#result = :result REMOVE #error", {":result": outcome.result or {}}
        else:
            change, values = "#error = :error REMOVE #result", {":error": outcome.error or "failed"}
        return {"Update": {
            "TableName": self._typed_jobs, "Key": to_item({"id": outcome.job_id}),
            "UpdateExpression": "SET #status = :final, place = :none, finished_at = :at, "
                                "timeline = list_append(timeline, :entry), " + change,
            # Only the attempt that is running settles: not a stale copy from before a takeover or a retry.
            "ConditionExpression": "#status = :running AND attempts = :attempt",
            "ExpressionAttributeNames": {"#status": "status", "#result": "result", "#error": "error"},
            "ExpressionAttributeValues": {
                **to_item({":final": final, ":none": "none", ":at": outcome.finished_at, ":running": "running",
                           ":attempt": outcome.attempt, **values}),
                ":entry": timeline_entry(final, outcome.finished_at, outcome.worker, outcome.attempt,
                                         None if final == "completed" else (outcome.error or "")[:500]),
            },
        }}


def backlog_put(state_table: str, item: TypedBacklogItem) -> dict[str, Any]:
    """A Put of a pending job's backlog item: in `TQ#<caller>` for admission, `BQ#<caller>` for bots."""
    return {"Put": {"TableName": state_table, "Item": to_item(
        {"pk": backlog_partition(item), "sk": backlog_key(item), **item.model_dump(exclude_none=True)})}}


def typed_job_item(job: TypedJob, main_text: str) -> dict[str, Any]:
    """A job as its typed-jobs table item: the job, and the attributes its GSIs key on and `q` searches."""
    return to_item({**job.model_dump(exclude_none=True), **listing_attributes(job, main_text)})


class DynamoTypedJobStore(DispatchCoordination, TypedJobStore):
    """Typed jobs: job items in the typed-jobs table; their backlogs, schedule, admission and counters in the state table."""

    CALLERS_PK = "TCALLERS"
    DISPATCH_PK = TYPED_DISPATCH_PK

    def __init__(self, client: DynamoDBClient, typed_jobs_table: str, state_table: str, results_table: str) -> None:
        super().__init__(client, state_table)
        self._typed_jobs = typed_jobs_table
        self._results = results_table

    # -- job items --

    def _job_key(self, job_id: str) -> dict[str, Any]:
        return to_item({"id": job_id})

    def _job_update(self, job_id: str, update: str, condition: str, values: dict[str, Any],
                    entry: dict[str, Any] | None = None) -> dict[str, Any]:
        attribute_values = to_item(values)
        if entry is not None:
            attribute_values[":entry"] = entry
        return {"TableName": self._typed_jobs, "Key": self._job_key(job_id), "UpdateExpression": update,
                "ConditionExpression": condition, "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": attribute_values}

    def _transact(self, writes: list[dict[str, Any] | None]) -> None:
        items = [write for write in writes if write is not None]
        call_with_conflict_retry(lambda: self._db.transact_write_items(TransactItems=items))

    def _backlog_put(self, item: TypedBacklogItem) -> dict[str, Any]:
        return backlog_put(self._table, item)

    def _backlog_delete(self, item: TypedBacklogItem, condition: bool = True) -> dict[str, Any]:
        delete = {"TableName": self._table, "Key": to_item({"pk": backlog_partition(item), "sk": backlog_key(item)})}
        if condition:
            delete["ConditionExpression"] = "attribute_exists(pk)"  # admitted or cancelled already: not twice
        return {"Delete": delete}

    def _schedule_key(self, item: TypedBacklogItem) -> dict[str, Any]:
        return to_item({"pk": "TSCHED", "sk": schedule_key(item)})

    def create(self, job: TypedJob, main_text: str, idempotency: tuple[str, str, str] | None, now: float) -> TypedJob:
        item = backlog_item(job)
        writes: list[dict[str, Any] | None] = [
            {"Put": {"TableName": self._typed_jobs, "Item": typed_job_item(job, main_text),
                     "ConditionExpression": "attribute_not_exists(id)"}},
            stats_update(self._table, {"pending": 1}, {job.type: 1}, total=1),
        ]
        if job.place == "scheduled":
            writes.append({"Put": {"TableName": self._table,
                                   "Item": {**self._schedule_key(item), **to_item(item.model_dump(exclude_none=True))}}})
        else:
            writes += [self._backlog_put(item),
                       caller_counts_update(self._table, callers_partition(job.target), job.caller, backlog=1)]
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

    def get(self, job_id: str) -> TypedJob | None:
        found = self._db.get_item(TableName=self._typed_jobs, Key=self._job_key(job_id), ConsistentRead=True)
        return TypedJob.model_validate(from_item(found["Item"])) if "Item" in found else None

    # Below this method, `list` in the class body names it, not the builtin: later annotations say builtins.list.
    def list(self, plan: ListPlan, start: dict[str, str] | None, limit: int) -> tuple[list[TypedJob], bool]:
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
        request = {"TableName": self._typed_jobs, "IndexName": plan.index, "KeyConditionExpression": key,
                   "ExpressionAttributeNames": names, "ExpressionAttributeValues": to_item(values),
                   "ScanIndexForward": plan.forward}
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        # One more than the page, so that `more` is exact and the last page is never an empty one.
        matched: list[dict[str, Any]] = []
        page = {"ExclusiveStartKey": to_item(start)} if start else {}
        while len(matched) <= limit:
            wanted = limit + 1 - len(matched)
            # With a filter, DynamoDB's Limit counts the items read, not those kept: read bigger pages.
            response = self._db.query(**request, Limit=max(wanted, 200) if filters else wanted, **page)
            matched += response["Items"]
            if "LastEvaluatedKey" not in response:
                break
            page = {"ExclusiveStartKey": response["LastEvaluatedKey"]}
        return [TypedJob.model_validate(from_item(item)) for item in matched[:limit]], len(matched) > limit

    # -- status changes --

    def cancel(self, job: TypedJob, now: float) -> None:
        item = backlog_item(job)
        update = self._job_update(
            job.id, "SET #status = :cancelled, place = :none, finished_at = :now, timeline = list_append(timeline, :entry)",
            # Only where we saw it: if it was admitted or promoted meanwhile, the service reads it again.
            "#status = :pending AND place = :place",
            {":cancelled": "cancelled", ":none": "none", ":now": now, ":pending": "pending", ":place": job.place},
            timeline_entry("cancelled", now, None, job.attempts, "cancelled"))
        writes: list[dict[str, Any] | None] = [{"Update": update},
                                     stats_update(self._table, {"pending": -1, "cancelled": 1})]
        if job.place == "queued":
            writes += [self._backlog_delete(item),
                       caller_counts_update(self._table, callers_partition(job.target), job.caller, backlog=-1)]
        elif job.place == "scheduled":
            writes.append({"Delete": {"TableName": self._table, "Key": self._schedule_key(item),
                                      "ConditionExpression": "attribute_exists(pk)"}})
        elif job.place == "admitted":
            # Its message is in SQS: the worker that receives it skips it, so its slot is freed here.
            writes.append(caller_counts_update(self._table, self.CALLERS_PK, job.caller, in_flight=-1))
        self._transact(writes)

    def start(self, job_id: str, attempt: int, worker: str, now: float) -> None:
        if not self.start_many([(job_id, attempt)], worker, now):
            raise StaleWrite(f"job {job_id} is not pending admitted at attempt {attempt - 1}")

    def start_many(self, attempts: Sequence[tuple[str, int]], worker: str, now: float) -> builtins.set[str]:
        """One transaction for a message's jobs; a job whose condition fails (cancelled, or started already) is
        named by DynamoDB's cancellation reasons and the rest go again without it."""
        chunk = MAX_TRANSACT_ITEMS - 1  # and the counters
        return builtins.set().union(*[self._start_chunk(attempts[i : i + chunk], worker, now)
                                      for i in range(0, len(attempts), chunk)])

    def _start_chunk(self, attempts: Sequence[tuple[str, int]], worker: str, now: float) -> builtins.set[str]:
        pending = list(attempts)
        while pending:
            updates = [{"Update": self._job_update(
                job_id, "SET #status = :running, place = :none, attempts = :attempt, started_at = :now, "
                        "timeline = list_append(timeline, :entry)",
                # The race with a cancel is decided here: exactly one of the two conditional writes lands.
                "#status = :pending AND place = :admitted AND attempts = :before",
                {":running": "running", ":none": "none", ":attempt": attempt, ":now": now, ":pending": "pending",
                 ":admitted": "admitted", ":before": attempt - 1},
                timeline_entry("running", now, worker, attempt, None))} for job_id, attempt in pending]
            try:
                self._transact([*updates, stats_update(self._table, {"pending": -len(pending), "running": len(pending)})])
                return {job_id for job_id, _ in pending}
            except StaleWrite as exc:
                lost = {i for i, code in enumerate(exc.reasons[: len(pending)]) if code == "ConditionalCheckFailed"}
                if not lost:
                    raise
                pending = [attempt for i, attempt in enumerate(pending) if i not in lost]
        return set()

    def take_over(self, job_id: str, attempt: int, worker: str, now: float, started_before: float) -> None:
        update = self._job_update(
            job_id, "SET started_at = :now, timeline = list_append(timeline, :entry)",
            "#status = :running AND attempts = :attempt AND started_at < :stale",
            {":now": now, ":running": "running", ":attempt": attempt, ":stale": started_before},
            timeline_entry("running", now, worker, attempt, "restarted: the worker that started this attempt did not settle it in time"))
        call_with_conflict_retry(lambda: self._db.update_item(**update))

    def requeue(self, job_id: str, attempt: int, worker: str, note: str, now: float) -> None:
        update = self._job_update(
            job_id, "SET #status = :pending, place = :admitted, #error = :error, timeline = list_append(timeline, :entry)",
            "#status = :running AND attempts = :attempt",
            {":pending": "pending", ":admitted": "admitted", ":error": note, ":running": "running", ":attempt": attempt},
            timeline_entry("pending", now, worker, attempt, note))
        update["ExpressionAttributeNames"]["#error"] = "error"
        self._transact([{"Update": update}, stats_update(self._table, {"running": -1, "pending": 1})])

    def retry(self, job: TypedJob, now: float) -> None:
        requeued = job.model_copy(update={"place": "queued", "attempts": 0})
        update = self._job_update(
            job.id, "SET #status = :pending, place = :queued, attempts = :zero, timeline = list_append(timeline, :entry) "
                    "REMOVE #error, #result, started_at, finished_at",
            "#status = :failed",
            {":pending": "pending", ":queued": "queued", ":zero": 0, ":failed": "failed"},
            timeline_entry("pending", now, None, 0, "retried by admin"))
        update["ExpressionAttributeNames"].update({"#error": "error", "#result": "result"})
        self._transact([
            {"Update": update},
            # The failed outcome goes, so the ledger records the next one (its condition is "no result yet").
            {"Delete": {"TableName": self._results, "Key": to_item({"job_id": job.id})}},
            self._backlog_put(backlog_item(requeued)),
            caller_counts_update(self._table, callers_partition(job.target), job.caller, backlog=1),
            stats_update(self._table, {"failed": -1, "pending": 1}),
        ])

    # -- admission --

    def take_populate_turn(self, now: float, next_at: float) -> bool:
        try:
            self._db.update_item(
                TableName=self._table, Key=to_item({"pk": self.DISPATCH_PK, "sk": "POPULATE"}),
                UpdateExpression="SET next_at = :next, taken_at = :now",
                # One batch per interval, however many schedule invocations fire (EventBridge may fire twice).
                ConditionExpression="attribute_not_exists(next_at) OR next_at <= :now",
                ExpressionAttributeValues=to_item({":next": next_at, ":now": now}))
            return True
        except StaleWrite:
            return False

    def promote_due(self, now: float, limit: int) -> int:
        due = self._query(KeyConditionExpression="pk = :pk AND sk <= :now",
                          ExpressionAttributeValues=to_item({":pk": "TSCHED", ":now": iso_key(now) + "~"}),
                          ConsistentRead=True, limit=limit)
        for found in due:
            item = TypedBacklogItem.model_validate(found)
            queued = item.model_copy(update={"due": None})
            promote = self._job_update(item.id, "SET place = :queued", "#status = :pending AND place = :scheduled",
                                       {":queued": "queued", ":pending": "pending", ":scheduled": "scheduled"})
            try:
                self._transact([
                    {"Delete": {"TableName": self._table, "Key": self._schedule_key(item),
                                "ConditionExpression": "attribute_exists(pk)"}},
                    {"Update": promote},
                    self._backlog_put(queued),
                    caller_counts_update(self._table, callers_partition(item.target), item.caller, backlog=1),
                ])
            except StaleWrite:
                continue  # cancelled, or promoted by another wake-up, meanwhile
        return len(due)

    def due_by(self, until: float, limit: int) -> builtins.list[float]:
        found = self._query(KeyConditionExpression="pk = :pk AND sk <= :until",
                            ExpressionAttributeValues=to_item({":pk": "TSCHED", ":until": iso_key(until) + "~"}),
                            ProjectionExpression="due", limit=limit)
        return [float(item["due"]) for item in found[:limit]]

    def backlog(self, caller: str, limit: int, skip: AbstractSet[str] = frozenset()) -> builtins.list[TypedBacklogItem]:
        # The types whose limits have no slot left are left out; the rest of the backlog keeps its order.
        values = {f":t{i}": job_type for i, job_type in enumerate(held_types(skip))}
        past_held = {"FilterExpression": f"NOT #type IN ({', '.join(values)})",
                     "ExpressionAttributeNames": {"#type": "type"}} if values else {}
        return [TypedBacklogItem.model_validate(item)
                for item in self._partition(f"TQ#{caller}", limit, values, ConsistentRead=True, **past_held)]

    def settled(self, caller: str, limit: int) -> builtins.list[Settled]:
        return latest_settled(self._db, self._table, f"TWAIT#{caller}", limit)

    def _admission_writes(self, caller: str, item: TypedBacklogItem, now: float) -> builtins.list[dict[str, Any]]:
        return [self._backlog_delete(item),
                {"Update": self._job_update(item.id, "SET place = :admitted", "#status = :pending AND place = :queued",
                                            {":admitted": "admitted", ":pending": "pending", ":queued": "queued"})}]

    # -- stats --

    def stats(self, since_minute: int, until_minute: int) -> TypedJobStats:
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
        return TypedJobStats(by_status=by_status, by_type=by_type, total=total, minutes=per_minute)
