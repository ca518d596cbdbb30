"""The failure log in DynamoDB (the state table): each failed message's last reason, for the DLQ view."""
from __future__ import annotations

from typing import Any

from chalicelib.aws.clients import DynamoDBClient
from chalicelib.aws.codec import from_item, to_item
from chalicelib.aws.retry import batch_put, domain_client
from chalicelib.dlq.store import FailureLog

FAILURE_TTL_S = 14 * 24 * 3600  # as long as the DLQ keeps a message


class DynamoFailureLog(FailureLog):
    """The last failure reason of each message that failed, for the DLQ view."""

    def __init__(self, client: DynamoDBClient, table_name: str):
        self._db = domain_client(client)
        self._table = table_name

    def record(self, failures: list[tuple[str, int, str]], now: float) -> None:
        latest = {message_id: (count, reason) for message_id, count, reason in failures}
        batch_put(self._db, self._table, [
            to_item({"pk": f"MSG#{message_id}", "sk": "FAILURE", "reason": reason[:1000], "receive_count": count,
                     "at": now, "expires_at": int(now) + FAILURE_TTL_S})
            for message_id, (count, reason) in latest.items()
        ])

    def reasons(self, message_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for offset in range(0, len(message_ids), 100):
            keys = [to_item({"pk": f"MSG#{m}", "sk": "FAILURE"}) for m in message_ids[offset : offset + 100]]
            pending: dict[str, Any] | None = {self._table: {"Keys": keys}}
            while pending:
                response = self._db.batch_get_item(RequestItems=pending)
                for item in map(from_item, response["Responses"].get(self._table, [])):
                    found[item["pk"][4:]] = item["reason"]
                pending = response.get("UnprocessedKeys") or None
        return found
