"""The datalake's in-memory twins: objects in a dict, the catalog in counters."""
from __future__ import annotations

from typing import Iterator

from chalicelib.datalake.models import DateStats, MinuteCount, ObjectFigures, Sample
from chalicelib.datalake.store import Catalog, ObjectStore


class MemoryObjectStore(ObjectStore):
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.metadata: dict[str, dict[str, str]] = {}
        self.puts = 0

    def put(self, key: str, body: bytes, metadata: dict[str, str]) -> None:
        self.objects[key], self.metadata[key] = body, dict(metadata)
        self.puts += 1

    def keys(self, prefix: str, start_after: str | None = None) -> Iterator[tuple[str, int]]:
        for key in sorted(self.objects):
            if key.startswith(prefix) and (start_after is None or key > start_after):
                yield key, len(self.objects[key])

    def lines(self, key: str) -> Iterator[bytes]:
        yield from self.objects[key].splitlines(keepends=True)

    def url(self, key: str, expires_s: int) -> str:
        return f"memory://{key}?expires={expires_s}"


class MemoryCatalog(Catalog):
    def __init__(self) -> None:
        self.counted: set[str] = set()
        self.by_date: dict[str, DateStats] = {}
        self.by_minute: dict[int, MinuteCount] = {}
        self.by_origin: dict[str, dict[str, int]] = {}
        self.kept: list[Sample] = []

    def count_once(self, figures: ObjectFigures, now: float) -> bool:
        if figures.key in self.counted:
            return False
        self.counted.add(figures.key)
        day = self.by_date.setdefault(figures.date, DateStats(date=figures.date))
        self.by_date[figures.date] = day.model_copy(update={
            "objects": day.objects + 1, "records": day.records + figures.records, "bytes": day.bytes + figures.bytes,
            "done": day.done + figures.done, "failed": day.failed + figures.failed})
        for minute, counts in figures.per_minute.items():
            known = self.by_minute.setdefault(minute, MinuteCount(minute=minute))
            self.by_minute[minute] = MinuteCount(minute=minute, done=known.done + counts["done"],
                                                 failed=known.failed + counts["failed"])
        for origin, counts in figures.by_origin.items():
            totals = self.by_origin.setdefault(origin, {"done": 0, "failed": 0, "retries": 0})
            for status, n in counts.items():
                totals[status] = totals.get(status, 0) + n
        self.kept.append(Sample(written_at=figures.written_at, lags_s=figures.lags_s, waits_s=figures.waits_s,
                                durations_s=figures.durations_s))
        return True

    def dates(self) -> list[DateStats]:
        return list(self.by_date.values())

    def minutes(self, since_minute: int) -> list[MinuteCount]:
        return [count for minute, count in sorted(self.by_minute.items()) if minute >= since_minute]

    def origins(self) -> dict[str, dict[str, int]]:
        return {origin: dict(counts) for origin, counts in self.by_origin.items()}

    def samples(self, limit: int) -> list[Sample]:
        return sorted(self.kept, key=lambda s: s.written_at, reverse=True)[:limit]
