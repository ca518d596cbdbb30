"""The dead-letter queue's views."""
from __future__ import annotations

from pydantic import BaseModel


class DeadLetter(BaseModel):
    message_id: str
    body: str
    receive_count: int
    sent_at: str | None = None
    reason: str | None = None  # the worker's last recorded failure, where known


class DeadLetters(BaseModel):
    count: int  # approximate number in the DLQ
    messages: list[DeadLetter]


class Redriven(BaseModel):
    moved: int
    remaining: int
