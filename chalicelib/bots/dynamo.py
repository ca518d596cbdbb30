"""Bots in DynamoDB, and the bots' settlement of the ledger.

State table:
  BOTS                 <bot id>                      the bot: name, labels, token_hash (sha256), lease_until,
                                                     holding (job id -> attempt), jobs_done, jobs_failed, leases_lost
  BOTLOG#<bot id>      <at>#<job id>                 its history: a job settled, handed back or lost (TTL a week)
  BQ#<caller>          <9-priority>#<created>#<id>   the caller's bot jobs waiting for a claim (typed/keys.py)
  BCALLERS             <caller>                      backlog, in_flight (held by bots), done, failed
  BLIMIT#<limit key>   <window start>                the claims that took a rate limit's slots in a window (TTL)
Bot jobs' items are typed jobs, in the typed-jobs table.
"""
from __future__ import annotations

from typing import AbstractSet, Any, Mapping, Sequence

from chalicelib.admission.dynamo import caller_counts_update, read_lease
from chalicelib.admission.limits import LimitWindow
from chalicelib.admission.models import CallerCounts
from chalicelib.aws.clients import DynamoDBClient
from chalicelib.aws.codec import from_item, to_item
from chalicelib.aws.retry import call_with_conflict_retry, domain_client, query_all
from chalicelib.bots.models import Bot, BotEvent
from chalicelib.bots.store import BotStore
from chalicelib.core.errors import HoldsMaxJobs, RateLimited, StaleWrite
from chalicelib.core.jobs import JobOutcome
from chalicelib.typed.dynamo import TYPED_DISPATCH_PK, TypedJobSettlement, backlog_put, stats_update, timeline_entry
from chalicelib.typed.keys import backlog_item, backlog_key, backlog_partition, callers_partition
from chalicelib.typed.models import TypedBacklogItem, TypedJob
from chalicelib.worker.settlement import Settlement, SettlementWrites, Write

BOTS_PK = "BOTS"
BOT_CALLERS = callers_partition("bot")
HISTORY_TTL_S = 7 * 24 * 3600
LIMIT_SLOTS_TTL_S = 3600  # a window's claim counter is used only in the window; kept an hour past it to look at
CLAIM_WRITES = 5  # the claim transaction's own writes; the limits' counters follow them


def history_put(state_table: str, bot_id: str, event: BotEvent) -> Write:
    return {"Put": {"TableName": state_table, "Item": to_item({
        "pk": f"BOTLOG#{bot_id}", "sk": f"{event.at:017.6f}#{event.job_id}", **event.model_dump(exclude_none=True),
        "expires_at": int(event.at) + HISTORY_TTL_S})}}


def _bot_key(bot_id: str) -> dict[str, Any]:
    return to_item({"pk": BOTS_PK, "sk": bot_id})


class BotJobSettlement(Settlement):
    """What a bot job's new outcome writes beside its result item: the typed job's settlement (the job to
    completed or failed, a settled sample, the counters; the callers' counts are the bots' own), and the bot
    letting the job go, with a line of its history. The bot's write is conditional on it holding this attempt,
    so an outcome from a bot whose lease was lost (and the job claimed again) is dropped by the ledger."""

    items_per_outcome = TypedJobSettlement.items_per_outcome + 2
    shared_items = TypedJobSettlement.shared_items
    common_items = TypedJobSettlement.common_items

    def __init__(self, state_table: str, typed_jobs_table: str) -> None:
        self._state = state_table
        self._typed = TypedJobSettlement(state_table, typed_jobs_table, callers=BOT_CALLERS)

    def writes(self, groups: Mapping[str, Sequence[JobOutcome]], now: float) -> SettlementWrites:
        typed = self._typed.writes(groups, now)
        outcomes = [outcome for group_outcomes in groups.values() for outcome in group_outcomes]
        per_outcome = []
        for outcome, writes in zip(outcomes, typed.per_outcome, strict=True):
            done = outcome.outcome == "done"
            let_go = {"Update": {
                "TableName": self._state, "Key": _bot_key(outcome.worker),
                "UpdateExpression": "REMOVE holding.#job ADD #count :one",
                # The bot still holds this very attempt: not handed back, not lost with its lease.
                "ConditionExpression": "holding.#job = :attempt",
                "ExpressionAttributeNames": {"#job": outcome.job_id, "#count": "jobs_done" if done else "jobs_failed"},
                "ExpressionAttributeValues": to_item({":one": 1, ":attempt": outcome.attempt}),
            }}
            event = BotEvent(at=outcome.finished_at, job_id=outcome.job_id, attempt=outcome.attempt,
                             event="completed" if done else "failed",
                             note=None if done else (outcome.error or "")[:500])
            per_outcome.append([*writes, let_go, history_put(self._state, outcome.worker, event)])
        return SettlementWrites(per_outcome=per_outcome, shared=typed.shared)


class DynamoBotStore(BotStore):
    """Bots and their leases in the state table; the jobs they run are typed jobs (the typed-jobs table)."""

    def __init__(self, client: DynamoDBClient, typed_jobs_table: str, state_table: str) -> None:
        self._db = domain_client(client)
        self._typed_jobs = typed_jobs_table
        self._table = state_table

    def _transact(self, writes: list[dict[str, Any] | None]) -> None:
        items = [write for write in writes if write is not None]  # stats_update is None when nothing changes
        call_with_conflict_retry(lambda: self._db.transact_write_items(TransactItems=items))

    def _query(self, limit: int | None = None, **request: Any) -> list[dict[str, Any]]:
        return [from_item(item) for item in query_all(self._db, limit, TableName=self._table, **request)]

    # -- the bots --

    def register(self, bot: Bot) -> None:
        self._db.put_item(TableName=self._table, Item=to_item({"pk": BOTS_PK, "sk": bot.id, **bot.model_dump()}),
                          ConditionExpression="attribute_not_exists(pk)")

    def get(self, bot_id: str) -> Bot | None:
        found = self._db.get_item(TableName=self._table, Key=_bot_key(bot_id), ConsistentRead=True)
        return Bot.model_validate(from_item(found["Item"])) if "Item" in found else None

    def bots(self) -> list[Bot]:
        return [Bot.model_validate(item) for item in self._query(
            KeyConditionExpression="pk = :pk", ExpressionAttributeValues=to_item({":pk": BOTS_PK}),
            ConsistentRead=True)]

    def delete(self, bot_id: str) -> None:
        # A bot that claimed meanwhile keeps its item until its job is handed back: nothing is left orphaned.
        self._db.delete_item(TableName=self._table, Key=_bot_key(bot_id),
                             ConditionExpression="attribute_exists(pk) AND size(holding) = :zero",
                             ExpressionAttributeValues=to_item({":zero": 0}))

    def beat(self, bot_id: str, now: float, lease_until: float) -> Bot:
        found = self._db.update_item(
            TableName=self._table, Key=_bot_key(bot_id), UpdateExpression="SET last_beat_at = :now, lease_until = :lease",
            ConditionExpression="attribute_exists(pk)", ReturnValues="ALL_NEW",
            ExpressionAttributeValues=to_item({":now": now, ":lease": lease_until}))
        return Bot.model_validate(from_item(found["Attributes"]))

    def extend(self, bot_id: str, job_id: str, now: float, lease_until: float) -> None:
        self._db.update_item(
            TableName=self._table, Key=_bot_key(bot_id), UpdateExpression="SET last_beat_at = :now, lease_until = :lease",
            ConditionExpression="attribute_exists(holding.#job)", ExpressionAttributeNames={"#job": job_id},
            ExpressionAttributeValues=to_item({":now": now, ":lease": lease_until}))

    def history(self, bot_id: str, limit: int) -> list[BotEvent]:
        return [BotEvent.model_validate(item) for item in self._query(
            limit, KeyConditionExpression="pk = :pk", ExpressionAttributeValues=to_item({":pk": f"BOTLOG#{bot_id}"}),
            ScanIndexForward=False)]

    # -- the jobs --

    def job(self, job_id: str) -> TypedJob | None:
        found = self._db.get_item(TableName=self._typed_jobs, Key=to_item({"id": job_id}), ConsistentRead=True)
        return TypedJob.model_validate(from_item(found["Item"])) if "Item" in found else None

    def callers(self) -> list[CallerCounts]:
        request: dict[str, Any] = {"KeyConditionExpression": "pk = :pk", "ConsistentRead": True}
        counts = self._query(**request, ExpressionAttributeValues=to_item({":pk": BOT_CALLERS}))
        # One weight per caller across ways in: admission's, which PUT /api/callers/{caller} sets.
        weights = {item["sk"]: float(item["weight"]) for item in self._query(
            **request, ExpressionAttributeValues=to_item({":pk": callers_partition("lambda")}),
            ProjectionExpression="sk, weight") if "weight" in item}
        return [CallerCounts(caller=item["sk"], weight=weights.get(item["sk"], 1.0),
                             **{k: int(item.get(k, 0)) for k in ("backlog", "in_flight", "done", "failed")})
                for item in counts]

    def backlog(self, caller: str, limit: int, types: AbstractSet[str] | None, now: float) -> list[TypedBacklogItem]:
        values: dict[str, Any] = {":pk": f"BQ#{caller}", ":now": now}
        names = {"#nb": "not_before"}
        filters = "(attribute_not_exists(#nb) OR #nb <= :now)"
        if types is not None:
            values.update({f":t{i}": job_type for i, job_type in enumerate(sorted(types))})
            names["#type"] = "type"
            filters += f" AND #type IN ({', '.join(f':t{i}' for i in range(len(types)))})"
        return [TypedBacklogItem.model_validate(item) for item in self._query(
            limit, KeyConditionExpression="pk = :pk", FilterExpression=filters, ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_item(values), ConsistentRead=True)]

    def limits(self) -> dict[str, float]:
        return read_lease(self._db, self._table, TYPED_DISPATCH_PK).per_minute

    def _slot_take(self, key: str, window: LimitWindow) -> dict[str, Any]:
        return {"Update": {
            "TableName": self._table, "Key": to_item({"pk": f"BLIMIT#{key}", "sk": f"{window.start:.6f}"}),
            "UpdateExpression": "ADD claims :one SET expires_at = :expires",
            # At most the window's slots, however many bots claim at once: the transaction serialises them on
            # this item.
            "ConditionExpression": "attribute_not_exists(claims) OR claims < :slots",
            "ExpressionAttributeValues": to_item({":one": 1, ":slots": window.slots,
                                                  ":expires": int(window.end) + LIMIT_SLOTS_TTL_S})}}

    def claim(self, bot: Bot, item: TypedBacklogItem, now: float, lease_until: float,
              slots: Mapping[str, LimitWindow] | None = None) -> None:
        limited = sorted((slots or {}).items())
        attempt = item.attempts + 1
        job = {"TableName": self._typed_jobs, "Key": to_item({"id": item.id}),
               "UpdateExpression": "SET #status = :running, place = :none, attempts = :attempt, started_at = :now, "
                                   "bot = :bot, timeline = list_append(timeline, :entry)",
               # Exactly one claim of this attempt lands, and not one of a job cancelled meanwhile.
               "ConditionExpression": "#status = :pending AND place = :queued AND attempts = :before",
               "ExpressionAttributeNames": {"#status": "status"},
               "ExpressionAttributeValues": {**to_item({
                   ":running": "running", ":none": "none", ":attempt": attempt, ":now": now, ":bot": bot.id,
                   ":pending": "pending", ":queued": "queued", ":before": item.attempts}),
                   ":entry": timeline_entry("running", now, bot.id, attempt, f"claimed by bot {bot.name}")}}
        holder = {"TableName": self._table, "Key": _bot_key(bot.id),
                  "UpdateExpression": "SET holding.#job = :attempt, lease_until = :lease, last_beat_at = :now",
                  # The bot holds at most max_jobs at once, however many claims it sends together.
                  "ConditionExpression": "attribute_exists(pk) AND size(holding) < :max",
                  "ExpressionAttributeNames": {"#job": item.id},
                  "ExpressionAttributeValues": to_item({":attempt": attempt, ":lease": lease_until, ":now": now,
                                                        ":max": bot.max_jobs})}
        try:
            self._transact([
                {"Delete": {"TableName": self._table,
                            "Key": to_item({"pk": backlog_partition(item), "sk": backlog_key(item)}),
                            "ConditionExpression": "attribute_exists(pk)"}},
                {"Update": job},
                {"Update": holder},
                caller_counts_update(self._table, BOT_CALLERS, item.caller, backlog=-1, in_flight=1),
                stats_update(self._table, {"pending": -1, "running": 1}),
                *(self._slot_take(key, window) for key, window in limited),
            ])
        except StaleWrite as exc:
            failed = [reason == "ConditionalCheckFailed" for reason in exc.reasons]
            if failed[2:3] == [True]:
                raise HoldsMaxJobs(f"bot {bot.id} holds {bot.max_jobs} job(s) already: settle one first") from exc
            held = frozenset(key for (key, _), hit in zip(limited, failed[CLAIM_WRITES:]) if hit)
            if held and not any(failed[:CLAIM_WRITES]):
                raise RateLimited(f"no slot left now under {', '.join(sorted(held))}", held) from exc
            raise

    def hand_back(self, bot_id: str, job: TypedJob, event: BotEvent, not_before: float | None, now: float,
                  expired_only: bool = False) -> None:
        item = backlog_item(job).model_copy(update={"not_before": not_before})
        note = event.note or event.event
        update = {"TableName": self._typed_jobs, "Key": to_item({"id": job.id}),
                  "UpdateExpression": "SET #status = :pending, place = :queued, #error = :note, "
                                      "timeline = list_append(timeline, :entry)",
                  "ConditionExpression": "#status = :running AND attempts = :attempt AND bot = :bot",
                  "ExpressionAttributeNames": {"#status": "status", "#error": "error"},
                  "ExpressionAttributeValues": {**to_item({
                      ":pending": "pending", ":queued": "queued", ":note": note, ":running": "running",
                      ":attempt": job.attempts, ":bot": bot_id}),
                      ":entry": timeline_entry("pending", now, bot_id, job.attempts, note)}}
        condition = "holding.#job = :attempt" + (" AND lease_until < :now" if expired_only else "")
        holder = {"TableName": self._table, "Key": _bot_key(bot_id),
                  "UpdateExpression": "REMOVE holding.#job ADD #count :one", "ConditionExpression": condition,
                  "ExpressionAttributeNames": {"#job": job.id,
                                               "#count": "leases_lost" if event.event == "lease_lost" else "jobs_failed"},
                  "ExpressionAttributeValues": to_item({":attempt": job.attempts, ":one": 1,
                                                        **({":now": now} if expired_only else {})})}
        self._transact([
            {"Update": update},
            backlog_put(self._table, item),
            {"Update": holder},
            caller_counts_update(self._table, BOT_CALLERS, job.caller, backlog=1, in_flight=-1),
            stats_update(self._table, {"running": -1, "pending": 1}),
            history_put(self._table, bot_id, event),
        ])
