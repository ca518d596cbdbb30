"""SQS's in-memory twin: a queue that keeps what is sent, for unit tests."""
from __future__ import annotations

from typing import Sequence

from chalicelib.core.jobs import OutboundMessage
from chalicelib.core.queue import MessageQueue
from chalicelib.dlq.models import DeadLetter
from chalicelib.dlq.store import DeadLetterQueue


class MemoryQueue(MessageQueue, DeadLetterQueue):
    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []
        self.delayed: dict[str, int] = {}  # receipt handle -> seconds held back

    def send(self, messages: Sequence[OutboundMessage]) -> None:
        self.sent.extend(messages)

    def delay_redelivery(self, delays: Sequence[tuple[str, int]]) -> None:
        self.delayed.update(delays)

    def peek(self, limit: int) -> list[DeadLetter]:
        return [DeadLetter(message_id=f"m{i}", body=m.body, receive_count=1) for i, m in enumerate(self.sent[:limit])]

    def move_to(self, target: MessageQueue, limit: int) -> int:
        moving, self.sent = self.sent[:limit], self.sent[limit:]
        target.send(moving)
        return len(moving)

    def depth(self) -> dict[str, int]:
        return {"visible": len(self.sent), "in_flight": 0, "delayed": 0}

    def drain(self) -> list[OutboundMessage]:
        taken, self.sent = self.sent, []
        return taken
