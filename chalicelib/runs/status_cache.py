"""The status every poller shares: one read of the run per interval, per API process."""
from __future__ import annotations

import threading
import time
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class StatusCache(Generic[T]):
    """One status read per interval, shared by every poller; writes through the API invalidate it.

    A read that was under way when a write invalidated the cache is answered
    but not kept: it may predate the write.
    """

    def __init__(self, ttl_s: float):
        self._ttl = ttl_s
        self._lock = threading.Lock()  # held by the one loader
        self._state = threading.Lock()  # held briefly, so an invalidation cannot land between check and store
        self._entry: tuple[T, float] | None = None  # (value, when it was read), replaced whole
        self._generation = 0

    def _fresh(self) -> T | None:
        entry = self._entry  # one read: an invalidation cannot empty it between the check and the return
        return entry[0] if entry is not None and time.monotonic() - entry[1] < self._ttl else None

    def get(self, load: Callable[[], T]) -> T:
        if (value := self._fresh()) is not None:
            return value
        with self._lock:  # one loader at a time; the others wait and reuse its answer
            if (value := self._fresh()) is not None:
                return value
            generation = self._generation
            value = load()
            with self._state:
                if generation == self._generation:
                    self._entry = (value, time.monotonic())
            return value

    def invalidate(self) -> None:
        with self._state:
            self._generation += 1
            self._entry = None
