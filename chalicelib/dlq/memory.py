"""The failure log's in-memory twin."""
from __future__ import annotations

from chalicelib.dlq.store import FailureLog


class MemoryFailureLog(FailureLog):
    def __init__(self) -> None:
        self.saved: dict[str, str] = {}

    def record(self, failures: list[tuple[str, int, str]], now: float) -> None:
        self.saved.update((message_id, reason) for message_id, _, reason in failures)

    def reasons(self, message_ids: list[str]) -> dict[str, str]:
        return {m: self.saved[m] for m in message_ids if m in self.saved}
