"""The dead-letter queue's views."""
from __future__ import annotations

from pydantic import BaseModel, Field


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


# Query strings are strings: these models are lax, so "5" is the limit 5.

class DeadLettersQuery(BaseModel):
    limit: int = Field(default=10, ge=1, le=100, description="messages to peek at")


class RedriveQuery(BaseModel):
    limit: int = Field(default=100, ge=1, le=10_000, description="messages to move back to the jobs queue at most")
