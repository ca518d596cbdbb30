"""The fleet store's in-memory twin."""
from __future__ import annotations

from chalicelib.fleet.models import WorkerBeat
from chalicelib.fleet.store import FleetStore


class MemoryFleetStore(FleetStore):
    def __init__(self) -> None:
        self.saved: dict[str, WorkerBeat] = {}
        self.desired: dict[str, int] = {}
        self.desired_bots: int | None = None

    def save_beat(self, beat: WorkerBeat) -> None:
        self.saved[beat.worker_id] = beat

    def beats(self) -> list[WorkerBeat]:
        return list(self.saved.values())

    def set_concurrency(self, source: str, concurrency: int, now: float) -> None:
        self.desired[source] = concurrency

    def concurrency(self, source: str) -> int | None:
        return self.desired.get(source)

    def set_bot_count(self, count: int, now: float) -> None:
        self.desired_bots = count

    def bot_count(self) -> int | None:
        return self.desired_bots
