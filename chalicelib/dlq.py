"""The dead-letter queue: what is in it, why, and moving it back."""
from __future__ import annotations

from typing import Protocol

from chalicelib.models import DeadLetter, DeadLetters, Redriven


class DeadLetterQueue(Protocol):
    def peek(self, limit: int) -> list[DeadLetter]:
        """Up to `limit` messages, left in the queue and visible again at once."""

    def move_to(self, target: "DeadLetterQueue", limit: int) -> int:
        """Move up to `limit` messages to `target` (send, then delete): at least once."""

    def depth(self) -> dict[str, int]: ...


class FailureLog(Protocol):
    def record(self, failures: list[tuple[str, int, str]], now: float) -> None:
        """Remember (message_id, receive_count, reason) for the DLQ view."""

    def reasons(self, message_ids: list[str]) -> dict[str, str]: ...


def dead_letters(dlq: DeadLetterQueue, failures: FailureLog, limit: int) -> DeadLetters:
    messages = dlq.peek(limit)
    reasons = failures.reasons([m.message_id for m in messages]) if messages else {}
    return DeadLetters(
        count=dlq.depth()["visible"],
        messages=[m.model_copy(update={"reason": reasons.get(m.message_id, m.reason)}) for m in messages],
    )


def redrive(dlq: DeadLetterQueue, source, limit: int) -> Redriven:
    moved = dlq.move_to(source, limit)
    return Redriven(moved=moved, remaining=dlq.depth()["visible"])
