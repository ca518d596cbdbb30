"""Reads that many pollers share: one read per key per interval, per API process."""
from __future__ import annotations

import threading
import time
from typing import Callable, Generic, Hashable, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class ReadCache(Generic[K, T]):
    """One read per key and interval, shared by every poller asking the same; writes through the API invalidate
    every key (app.py).

    A read that was under way when a write invalidated the cache is answered
    but not kept: it may predate the write. Pollers of one key wait for its
    one loader; other keys load meanwhile. At most `max_keys` answers are
    kept, the oldest dropped first.
    """

    def __init__(self, ttl_s: float, max_keys: int = 256):
        self._ttl = ttl_s
        self._max_keys = max_keys
        self._state = threading.Lock()  # held briefly, so an invalidation cannot land between check and store
        self._loaders: dict[K, threading.Lock] = {}  # per key, held by its one loader
        self._entries: dict[K, tuple[T, float]] = {}  # key -> (value, when it was read), each replaced whole
        self._generation = 0

    def _fresh(self, key: K) -> T | None:
        entry = self._entries.get(key)  # one read: an invalidation cannot empty it between the check and the return
        return entry[0] if entry is not None and time.monotonic() - entry[1] < self._ttl else None

    def get(self, key: K, load: Callable[[], T]) -> T:
        if (value := self._fresh(key)) is not None:
            return value
        with self._state:
            loader = self._loaders.setdefault(key, threading.Lock())
        with loader:  # one loader per key; the others wait and reuse its answer
            if (value := self._fresh(key)) is not None:
                return value
            generation = self._generation
            value = load()
            with self._state:
                if generation == self._generation:
                    self._entries.pop(key, None)  # re-inserted last: the oldest entry is first
                    self._entries[key] = (value, time.monotonic())
                    while len(self._entries) > self._max_keys:
                        oldest = next(iter(self._entries))
                        del self._entries[oldest]
                        self._loaders.pop(oldest, None)
            return value

    def invalidate(self) -> None:
        with self._state:
            self._generation += 1
            self._entries, self._loaders = {}, {}
