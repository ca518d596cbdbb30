"""The datalake's catalog in DynamoDB (the state table): each object counted once, with its date's counters.

| pk | sk | what |
|---|---|---|
| `DLOBJ#<date>` | `<object key>` | the object was counted (TTL 3 days: a stream keeps records 24 h) |
| `DLDATE` | `<date>` | objects, records, bytes, done, failed |
| `DLORIGIN` | `<origin>` | done, failed, retries (attempts before the recorded one): every result ever counted |
| `DLMIN` | `<minute>` | done, failed finished in that minute (TTL 1 day) |
| `DLSAMPLE` | `<written at>#<key>` | a sample of the object's lags, waits and durations (TTL 1 day) |
"""
from __future__ import annotations

from typing import Any

from chalicelib.aws.clients import DynamoDBClient
from chalicelib.aws.codec import from_item, to_item
from chalicelib.aws.retry import call_with_conflict_retry, domain_client, query_all
from chalicelib.core.errors import StaleWrite
from chalicelib.core.times import iso_key
from chalicelib.datalake.models import DateStats, MinuteCount, ObjectFigures, Sample
from chalicelib.datalake.store import Catalog

MARKER_TTL_S = 3 * 24 * 3600
RECENT_TTL_S = 24 * 3600
_COUNTERS = ("objects", "records", "bytes", "done", "failed")


def _add(pk: str, sk: str, counts: dict[str, int], table: str, expires_at: int | None = None) -> dict[str, Any]:
    names = {f"#c{i}": name for i, name in enumerate(counts)}
    values = {f":c{i}": n for i, n in enumerate(counts.values())}
    expression = "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(counts)))
    if expires_at is not None:
        names["#e"], values[":e"] = "expires_at", expires_at
        expression += " SET #e = :e"
    return {"Update": {"TableName": table, "Key": to_item({"pk": pk, "sk": sk}), "UpdateExpression": expression,
                       "ExpressionAttributeNames": names, "ExpressionAttributeValues": to_item(values)}}


class DynamoCatalog(Catalog):
    def __init__(self, client: DynamoDBClient, state_table: str):
        self._db = domain_client(client)
        self._table = state_table

    def count_once(self, figures: ObjectFigures, now: float) -> bool:
        table = self._table
        items: list[dict[str, Any]] = [
            # The one condition that counts an object once, however often its batch is handed over.
            {"Put": {"TableName": table, "ConditionExpression": "attribute_not_exists(pk)", "Item": to_item({
                "pk": f"DLOBJ#{figures.date}", "sk": figures.key, "records": figures.records,
                "written_at": figures.written_at, "expires_at": int(now) + MARKER_TTL_S})}},
            _add("DLDATE", figures.date, {"objects": 1, "records": figures.records, "bytes": figures.bytes,
                                          "done": figures.done, "failed": figures.failed}, table),
            *(_add("DLORIGIN", origin, counts, table) for origin, counts in sorted(figures.by_origin.items())),
            *(_add("DLMIN", f"{minute:012d}", counts, table, int(now) + RECENT_TTL_S)
              for minute, counts in sorted(figures.per_minute.items())),
            {"Put": {"TableName": table, "Item": to_item({
                "pk": "DLSAMPLE", "sk": f"{iso_key(figures.written_at)}#{figures.key}", "written_at": figures.written_at,
                "lags_s": figures.lags_s, "waits_s": figures.waits_s, "durations_s": figures.durations_s,
                "expires_at": int(now) + RECENT_TTL_S})}},
        ]
        try:
            call_with_conflict_retry(lambda: self._db.transact_write_items(TransactItems=items))
        except StaleWrite as exc:
            if exc.reasons and exc.reasons[0] == "ConditionalCheckFailed":
                return False  # counted when this batch was handed over before
            raise
        return True

    def _partition(self, pk: str, **request: Any) -> list[dict[str, Any]]:
        found = query_all(self._db, TableName=self._table, KeyConditionExpression="pk = :pk",
                          ExpressionAttributeValues=to_item({":pk": pk}), **request)
        return [from_item(item) for item in found]

    def dates(self) -> list[DateStats]:
        return [DateStats(date=item["sk"], **{name: int(item.get(name, 0)) for name in _COUNTERS})
                for item in self._partition("DLDATE")]

    def minutes(self, since_minute: int) -> list[MinuteCount]:
        found = query_all(self._db, TableName=self._table, KeyConditionExpression="pk = :pk AND sk >= :since",
                          ExpressionAttributeValues=to_item({":pk": "DLMIN", ":since": f"{since_minute:012d}"}))
        return [MinuteCount(minute=int(item["sk"]), done=int(item.get("done", 0)), failed=int(item.get("failed", 0)))
                for item in map(from_item, found)]

    def origins(self) -> dict[str, dict[str, int]]:
        return {item["sk"]: {name: int(item.get(name, 0)) for name in ("done", "failed", "retries")}
                for item in self._partition("DLORIGIN")}

    def samples(self, limit: int) -> list[Sample]:
        found = self._db.query(TableName=self._table, KeyConditionExpression="pk = :pk",
                               ExpressionAttributeValues=to_item({":pk": "DLSAMPLE"}), ScanIndexForward=False,
                               Limit=limit)["Items"]
        return [Sample.model_validate(from_item(item)) for item in found]
