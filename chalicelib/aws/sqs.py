"""SQS adapter: batched sends to one queue."""
from __future__ import annotations

import threading
from typing import Any, Sequence

from chalicelib.aws.clients import SQSClient
from chalicelib.aws.retry import domain_client
from chalicelib.core.errors import DependencyUnavailable
from chalicelib.core.jobs import OutboundMessage
from chalicelib.core.queue import MessageQueue
from chalicelib.core.times import iso
from chalicelib.dlq.models import DeadLetter
from chalicelib.dlq.store import DeadLetterQueue

SQS_BATCH = 10
PEEK_HOLD_S = 30  # long enough to page through a peek without seeing a message twice


class SqsQueue(MessageQueue, DeadLetterQueue):
    def __init__(self, client: SQSClient, queue_name: str):
        self._sqs = domain_client(client)
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
            str(i): {"Id": str(i), "MessageBody": m.body, "DelaySeconds": m.delay_seconds,
                     **({"MessageGroupId": m.group_id} if m.group_id else {})}
            for i, m in enumerate(batch)
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

    def delay_redelivery(self, delays: Sequence[tuple[str, int]]) -> None:
        """Hold received messages back for the given seconds: backoff through visibility."""
        for offset in range(0, len(delays), SQS_BATCH):
            chunk = delays[offset : offset + SQS_BATCH]
            self._sqs.change_message_visibility_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                         for i, (handle, seconds) in enumerate(chunk)],
            )

    def _take(self, wanted: int, hold_s: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = self._sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=min(SQS_BATCH, wanted), VisibilityTimeout=hold_s,
            WaitTimeSeconds=0, AttributeNames=["All"],
        ).get("Messages", [])
        return messages

    def peek(self, limit: int) -> list[DeadLetter]:
        taken: dict[str, dict[str, Any]] = {}
        while len(taken) < limit:
            batch = [m for m in self._take(limit - len(taken), PEEK_HOLD_S) if m["MessageId"] not in taken]
            if not batch:
                break
            taken.update((m["MessageId"], m) for m in batch)
        self.delay_redelivery([(m["ReceiptHandle"], 0) for m in taken.values()])  # visible again at once
        return [
            DeadLetter(
                message_id=m["MessageId"],
                body=m["Body"],
                receive_count=int(m["Attributes"].get("ApproximateReceiveCount", "0")),
                sent_at=_sent_at(m["Attributes"].get("SentTimestamp")),
            )
            for m in taken.values()
        ]

    def move_to(self, target: MessageQueue, limit: int) -> int:
        moved = 0
        while moved < limit:
            batch = self._take(limit - moved, PEEK_HOLD_S)
            if not batch:
                break
            # Sent before deleted: a crash in between duplicates a message, never loses one.
            target.send([OutboundMessage(body=m["Body"]) for m in batch])
            self._sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )
            moved += len(batch)
        return moved


def _sent_at(epoch_ms: str | None) -> str | None:
    return iso(int(epoch_ms) / 1000, timespec="seconds") if epoch_ms else None


class DuplicatingQueue:
    """A drill: sends every message twice, as an at-least-once queue may deliver it."""

    def __init__(self, queue: SqsQueue):
        self._queue = queue

    def send(self, messages: Sequence[OutboundMessage]) -> None:
        self._queue.send(list(messages) * 2)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)
