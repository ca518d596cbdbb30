"""The dead-letter queue: what is in it, why, and moving it back."""
from __future__ import annotations

from chalicelib.core.queue import MessageQueue
from chalicelib.dlq.models import DeadLetters, Redriven
from chalicelib.dlq.store import DeadLetterQueue, FailureLog


def dead_letters(dlq: DeadLetterQueue, failures: FailureLog, limit: int) -> DeadLetters:
    messages = dlq.peek(limit)
    reasons = failures.reasons([m.message_id for m in messages]) if messages else {}
    return DeadLetters(
        count=dlq.depth()["visible"],
        messages=[m.model_copy(update={"reason": reasons.get(m.message_id, m.reason)}) for m in messages],
    )


def redrive(dlq: DeadLetterQueue, source: MessageQueue, limit: int) -> Redriven:
    moved = dlq.move_to(source, limit)
    return Redriven(moved=moved, remaining=dlq.depth()["visible"])
