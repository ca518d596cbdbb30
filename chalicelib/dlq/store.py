"""The dead-letter queue's ports: the queue itself, and the log of why each message failed."""
from __future__ import annotations

from typing import Protocol

from chalicelib.core.queue import MessageQueue
from chalicelib.dlq.models import DeadLetter


class DeadLetterQueue(Protocol):
    def peek(self, limit: int) -> list[DeadLetter]:
        """Up to `limit` messages, left in the queue and visible again at once."""

    def move_to(self, target: MessageQueue, limit: int) -> int:
        """Move up to `limit` messages to `target` (send, then delete): at least once."""

    def depth(self) -> dict[str, int]: ...


class FailureLog(Protocol):
    def record(self, failures: list[tuple[str, int, str]], now: float) -> None:
        """Remember (message_id, receive_count, reason) for the DLQ view."""

    def reasons(self, message_ids: list[str]) -> dict[str, str]: ...
