"""The queue port every feature sends through (SQS's adapter is aws/sqs.py, its twin aws/memory.py)."""
from __future__ import annotations

from typing import Protocol, Sequence

from chalicelib.core.jobs import OutboundMessage


class MessageQueue(Protocol):
    def send(self, messages: Sequence[OutboundMessage]) -> None: ...

    def delay_redelivery(self, delays: Sequence[tuple[str, int]]) -> None:
        """Hold received messages (by receipt handle) back for the given seconds."""
