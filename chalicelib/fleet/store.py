"""The fleet's store port."""
from __future__ import annotations

from typing import Protocol

from chalicelib.fleet.models import WorkerBeat


class FleetStore(Protocol):
    def save_beat(self, beat: WorkerBeat) -> None: ...

    def beats(self) -> list[WorkerBeat]: ...

    def set_concurrency(self, source: str, concurrency: int, now: float) -> None: ...

    def concurrency(self, source: str) -> int | None: ...

    def set_bot_count(self, count: int, now: float) -> None: ...

    def bot_count(self) -> int | None: ...
