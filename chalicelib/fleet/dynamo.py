"""The fleet in DynamoDB (the state table): worker beats, the desired concurrency and the desired bot count."""
from __future__ import annotations

from chalicelib.aws.clients import DynamoDBClient
from chalicelib.aws.codec import from_item, to_item
from chalicelib.aws.retry import domain_client
from chalicelib.fleet.models import WorkerBeat
from chalicelib.fleet.store import FleetStore

BEAT_TTL_S = 24 * 3600


class DynamoFleetStore(FleetStore):
    """Worker beats under pk=WORKERS; desired concurrency where the local runtime reads it; the desired count of
    reference bots where the local stack reads it."""

    CONCURRENCY = "RUNTIME#concurrency"  # infra/runtime's ConcurrencyControl reads this partition
    # Its own partition, not RUNTIME#concurrency: the runtime would take an item there for an event source.
    BOTS = {"pk": "RUNTIME#bots", "sk": "reference"}  # infra/stack.py's BotCountFollower reads it

    def __init__(self, client: DynamoDBClient, table_name: str):
        self._db = domain_client(client)
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

    def set_bot_count(self, count: int, now: float) -> None:
        self._db.put_item(TableName=self._table, Item=to_item({**self.BOTS, "count": count, "updated_at": now}))

    def bot_count(self) -> int | None:
        found = self._db.get_item(TableName=self._table, Key=to_item(self.BOTS), ConsistentRead=True)
        return int(from_item(found["Item"])["count"]) if "Item" in found else None
