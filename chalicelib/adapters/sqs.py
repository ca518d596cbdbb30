"""SQS adapter: batched sends to one queue."""
from __future__ import annotations

import threading
from typing import Sequence

from chalicelib.errors import DependencyUnavailable
from chalicelib.models import OutboundMessage

SQS_BATCH = 10


class SqsQueue:
    def __init__(self, client, queue_name: str):
        self._sqs = client
        self.name = queue_name
        self._url: str | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        with self._lock:
            if self._url is None:
                self._url = self._sqs.get_queue_url(QueueName=self.name)["QueueUrl"]
            return self._url

    def send(self, messages: Sequence[OutboundMessage]) -> None:
        for offset in range(0, len(messages), SQS_BATCH):
            self._send_batch(list(messages[offset : offset + SQS_BATCH]))

    def _send_batch(self, batch: list[OutboundMessage]) -> None:
        entries = {
            str(i): {"Id": str(i), "MessageBody": m.body, "DelaySeconds": m.delay_seconds} for i, m in enumerate(batch)
        }
        for _ in range(3):
            response = self._sqs.send_message_batch(QueueUrl=self.url, Entries=list(entries.values()))
            failed = {f["Id"] for f in response.get("Failed", [])}
            entries = {key: entry for key, entry in entries.items() if key in failed}
            if not entries:
                return
        raise DependencyUnavailable(f"SQS refused {len(entries)} messages for {self.name}")

    def depth(self) -> dict[str, int]:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                            "ApproximateNumberOfMessagesDelayed"],
        )["Attributes"]
        return {
            "visible": int(attributes["ApproximateNumberOfMessages"]),
            "in_flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
            "delayed": int(attributes["ApproximateNumberOfMessagesDelayed"]),
        }
