"""Admission's coordination in DynamoDB: one dispatcher's lease with its round-robin cursor, and the outbox."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from chalicelib.admission.models import CallerCounts, Lease, Service
from chalicelib.aws.clients import DynamoDBClient
from chalicelib.aws.codec import from_item, to_item
from chalicelib.aws.retry import MAX_TRANSACT_ITEMS, batch_delete, call_with_conflict_retry, domain_client, query_all
from chalicelib.core.errors import StaleWrite


# The lease item's attribute for each rate limit in force (an admin sets it beside the holder's writes, as the
# pause switch's `paused`): the lease brings them to each pass, so a pass reads no switch of its own.
LIMIT_PREFIX = "limit:"


def _lease(item: dict[str, Any]) -> Lease:
    def prefixed(prefix: str) -> dict[str, float]:
        return {name[len(prefix):]: float(value) for name, value in item.items() if name.startswith(prefix)}

    return Lease(cursor=int(item.get("cursor", 0)), per_minute=prefixed(LIMIT_PREFIX),
                 given={key: {float(start): int(n) for start, n in windows.items()}
                        for key, windows in item.get("given", {}).items()},
                 timer_at=float(item.get("timer_at", 0)), paused=bool(item.get("paused", False)),
                 service=Service(floor=float(item.get("served_floor", 0)),
                                 of={caller: float(v) for caller, v in item.get("served", {}).items()}))


def _lease_writes(lease: Lease) -> tuple[dict[str, str], dict[str, Any], str]:
    """What letting the lease go writes: the cursor, the timer, weighted round robin's memory and the jobs given
    out in each limit's windows (names, values, SETs)."""
    names = {"#cursor": "cursor"}
    given = {key: {repr(start): n for start, n in windows.items()} for key, windows in lease.given.items()}
    values: dict[str, Any] = {":cursor": lease.cursor, ":timer_at": lease.timer_at,
                              ":served": lease.service.of, ":served_floor": lease.service.floor, ":given": given}
    sets = ["#cursor = :cursor", "timer_at = :timer_at", "served = :served", "served_floor = :served_floor",
            "given = :given"]
    return names, values, ", ".join(sets)


def caller_counts_update(table: str, partition: str, caller: str, backlog: int = 0, in_flight: int = 0, done: int = 0,
                         failed: int = 0) -> dict[str, Any]:
    """A transaction's Update adding to one caller's counts in a callers partition (fair compute's `CALLERS`, the
    typed jobs' `TCALLERS`, the bots' `BCALLERS`); counts that do not change are left out."""
    deltas = {name: delta for name, delta in (("backlog", backlog), ("in_flight", in_flight), ("done", done),
                                              ("failed", failed)) if delta}
    return {"Update": {
        "TableName": table, "Key": to_item({"pk": partition, "sk": caller}),
        "UpdateExpression": "ADD " + ", ".join(f"{name} :{name}" for name in deltas),
        "ExpressionAttributeValues": to_item({f":{name}": delta for name, delta in deltas.items()}),
    }}


def read_lease(db: Any, table: str, dispatch_pk: str) -> Lease:
    """A dispatcher's lease item as it stands: the rate limits in force and the pause switch with it."""
    found = db.get_item(TableName=table, Key=to_item({"pk": dispatch_pk, "sk": "LEASE"}), ConsistentRead=True)
    return _lease(from_item(found["Item"])) if "Item" in found else Lease()


@dataclass(frozen=True)
class _Message:
    """One admitted message's part of a transaction: its caller, outbox key, job count, and writes."""

    caller: str
    key: str
    jobs: int
    writes: list[dict[str, Any]]


def _items(group: Sequence[_Message]) -> int:
    """A transaction's items for these messages: their writes and each caller's counts once."""
    return sum(len(message.writes) for message in group) + len({message.caller for message in group})


class DispatchCoordination:
    """A feature's admission state in the state table: each caller's counts and weight (one item per caller in
    the CALLERS_PK partition), and a dispatcher's lease (one admitter at a time, with its round-robin cursor)
    and outbox (the DISPATCH_PK partition). Fair compute's store and the typed jobs' store each have theirs."""

    CALLERS_PK = ""
    DISPATCH_PK = ""

    def __init__(self, client: DynamoDBClient, table_name: str):
        self._db = domain_client(client)
        self._table = table_name

    @property
    def _lease_key(self) -> dict[str, Any]:
        return to_item({"pk": self.DISPATCH_PK, "sk": "LEASE"})

    def _query(self, limit: int | None = None, **request: Any) -> list[dict[str, Any]]:
        """Every item of a Query on the state table (up to `limit`), decoded."""
        return [from_item(item) for item in query_all(self._db, limit, TableName=self._table, **request)]

    def _partition(self, pk: str, limit: int | None = None, values: dict[str, Any] | None = None,
                   **request: Any) -> list[dict[str, Any]]:
        """The items of one partition of the state table in sort key order (up to `limit`), decoded; `values` are
        a FilterExpression's."""
        if limit is not None and limit <= 0:
            return []
        return self._query(limit, KeyConditionExpression="pk = :pk",
                           ExpressionAttributeValues=to_item({":pk": pk, **(values or {})}), **request)

    def callers(self) -> list[CallerCounts]:
        return [CallerCounts(caller=item["sk"], weight=float(item.get("weight", 1)),
                             **{k: int(item.get(k, 0)) for k in ("backlog", "in_flight", "done", "failed")})
                for item in self._partition(self.CALLERS_PK, ConsistentRead=True)]

    def set_weight(self, caller: str, weight: float, now: float) -> None:
        self._db.update_item(TableName=self._table, Key=to_item({"pk": self.CALLERS_PK, "sk": caller}),
                             UpdateExpression="SET weight = :weight, weighed_at = :now",
                             ExpressionAttributeValues=to_item({":weight": weight, ":now": now}))

    def take_lease(self, holder: str, now: float, ttl_s: float) -> Lease | None:
        try:
            found = self._db.update_item(
                TableName=self._table, Key=self._lease_key,
                UpdateExpression="SET holder = :holder, expires = :expires, again = :no",
                # One dispatcher at a time: two would admit the same backlog heads twice.
                ConditionExpression="attribute_not_exists(expires) OR expires < :now",
                ExpressionAttributeValues=to_item({":holder": holder, ":expires": now + ttl_s, ":now": now,
                                                   ":no": False}),
                ReturnValues="ALL_NEW", ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except StaleWrite as held:
            # Held: ask the holder to go round again, so this trigger is not lost. If someone has asked already
            # (the holder clears `again` before the pass it answers with), that pass comes after this trigger too.
            if held.item is None or not from_item(held.item).get("again"):
                self._db.update_item(TableName=self._table, Key=self._lease_key, UpdateExpression="SET again = :yes",
                                     ExpressionAttributeValues=to_item({":yes": True}))
            return None
        return _lease(from_item(found["Attributes"]))

    def release_lease(self, holder: str, lease: Lease, now: float, ttl_s: float, final: bool = False) -> bool:
        names, values, sets = _lease_writes(lease)
        values[":holder"] = holder
        try:
            self._db.update_item(
                TableName=self._table, Key=self._lease_key, UpdateExpression="SET expires = :zero, " + sets,
                ConditionExpression="holder = :holder" + ("" if final else " AND again = :no"),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item({**values, ":zero": 0, **({} if final else {":no": False})}))
            return True
        except StaleWrite:
            pass
        try:  # asked again while we held it (or we lost it): keep it for one more pass, under the limits now in force
            kept = self._db.update_item(
                TableName=self._table, Key=self._lease_key,
                UpdateExpression="SET expires = :expires, again = :no, " + sets,
                ConditionExpression="holder = :holder", ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item({**values, ":expires": now + ttl_s, ":no": False}),
                ReturnValues="ALL_NEW")
        except StaleWrite:
            return True  # lost by expiry: the next holder goes on
        in_force = _lease(from_item(kept["Attributes"]))
        lease.per_minute, lease.paused = in_force.per_minute, in_force.paused
        return False

    def limits(self) -> dict[str, float]:
        return read_lease(self._db, self._table, self.DISPATCH_PK).per_minute

    def paused(self) -> bool:
        return read_lease(self._db, self._table, self.DISPATCH_PK).paused

    def set_paused(self, paused: bool, now: float) -> None:
        self._db.update_item(TableName=self._table, Key=self._lease_key,
                             UpdateExpression="SET paused = :paused, paused_at = :now",
                             ExpressionAttributeValues=to_item({":paused": paused, ":now": now}))

    def set_limit(self, key: str, per_minute: float | None, now: float) -> None:
        names = {"#limit": LIMIT_PREFIX + key}
        if per_minute is None:
            self._db.update_item(TableName=self._table, Key=self._lease_key, UpdateExpression="REMOVE #limit",
                                 ExpressionAttributeNames=names)
            return
        self._db.update_item(TableName=self._table, Key=self._lease_key,
                             UpdateExpression="SET #limit = :per_minute, limited_at = :now",
                             ExpressionAttributeNames=names,
                             ExpressionAttributeValues=to_item({":per_minute": per_minute, ":now": now}))

    def _admission_writes(self, caller: str, item: Any, now: float) -> list[dict[str, Any]]:
        """The writes that move one backlog item to in flight (each conditional on it still waiting)."""
        raise NotImplementedError

    def admit(self, caller: str, items: Sequence[Any], body: str, now: float) -> str:
        """One message: its items' writes, the caller's counts and the outbox entry in one transaction. Raises
        StaleWrite if any item left the backlog already."""
        return self._admit_together([self._message(caller, items, body, now)])[0]

    def admit_many(self, messages: Sequence[tuple[str, Sequence[Any], str]], now: float) -> list[str | None]:
        """Messages of any callers grouped into transactions of up to 100 items (each caller's counts once in
        each): a pass that admits a little for each of several callers costs one transaction, not one each."""
        keys: list[str | None] = []
        group: list[_Message] = []
        for caller, items, body in messages:
            message = self._message(caller, items, body, now)
            if group and _items(group + [message]) > MAX_TRANSACT_ITEMS:
                keys += self._admit_or_leave_out(group)
                group = []
            group.append(message)
        if group:
            keys += self._admit_or_leave_out(group)
        return keys

    def _message(self, caller: str, items: Sequence[Any], body: str, now: float) -> _Message:
        key = f"OUT#{items[0].id}"
        writes = [write for item in items for write in self._admission_writes(caller, item, now)]
        return _Message(caller, key, len(items), writes + [self._outbox_put(key, body, now)])

    def _admit_together(self, group: Sequence[_Message]) -> list[str]:
        writes = [write for message in group for write in message.writes]
        for caller in dict.fromkeys(message.caller for message in group):
            admitted = sum(message.jobs for message in group if message.caller == caller)
            writes.append(caller_counts_update(self._table, self.CALLERS_PK, caller, backlog=-admitted,
                                               in_flight=admitted))
        call_with_conflict_retry(lambda: self._db.transact_write_items(TransactItems=writes))
        return [message.key for message in group]

    def _admit_or_leave_out(self, group: Sequence[_Message]) -> list[str | None]:
        """A group that loses a race goes again a message at a time, so only the stale message is left out (its
        items were admitted by a dispatcher whose lease ran out under it; that one sends them)."""
        try:
            return list(self._admit_together(group))
        except StaleWrite:
            if len(group) == 1:
                return [None]
            return [key for message in group for key in self._admit_or_leave_out([message])]

    def _outbox_put(self, key: str, body: str, now: float) -> dict[str, Any]:
        return {"Put": {"TableName": self._table,
                        "Item": to_item({"pk": self.DISPATCH_PK, "sk": key, "body": body, "created_at": now})}}

    def outbox(self, created_before: float) -> list[tuple[str, str]]:
        found = self._query(KeyConditionExpression="pk = :pk AND begins_with(sk, :out)",
                            ExpressionAttributeValues=to_item({":pk": self.DISPATCH_PK, ":out": "OUT#"}),
                            ConsistentRead=True)
        return [(item["sk"], item["body"]) for item in found if float(item["created_at"]) < created_before]

    def forget_outbox(self, keys: Sequence[str]) -> None:
        batch_delete(self._db, self._table, [{"pk": self.DISPATCH_PK, "sk": key} for key in keys])
