"""Admission coordination's in-memory twin."""
from __future__ import annotations

import builtins
import threading
from dataclasses import replace
from typing import Any, Sequence

from chalicelib.admission.models import CallerCounts, Lease
from chalicelib.core.errors import StaleWrite


class MemoryDispatchCoordination:
    """Each caller's counts and weight, a dispatcher's lease, round-robin cursor and outbox (DispatchCoordination's
    twin)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.counts: dict[str, CallerCounts] = {}
        self.lease: tuple[str, float] | None = None  # holder, expires
        self.asked_again = False
        self.state = Lease()  # the cursor and the rate limits' state, as the lease item keeps them
        self.pending_sends: dict[str, tuple[float, str]] = {}

    def _count(self, caller: str) -> CallerCounts:
        return self.counts.setdefault(caller, CallerCounts(caller=caller))

    def callers(self) -> builtins.list[CallerCounts]:
        with self.lock:
            return [c.model_copy() for c in self.counts.values()]

    def set_weight(self, caller: str, weight: float, now: float) -> None:
        with self.lock:
            self._count(caller).weight = weight

    def take_lease(self, holder: str, now: float, ttl_s: float) -> Lease | None:
        with self.lock:
            if self.lease is not None and self.lease[1] >= now:
                self.asked_again = True
                return None
            self.lease, self.asked_again = (holder, now + ttl_s), False
            return replace(self.state, per_minute=dict(self.state.per_minute),
                           given={key: dict(windows) for key, windows in self.state.given.items()},
                           service=replace(self.state.service, of=dict(self.state.service.of)))

    def release_lease(self, holder: str, lease: Lease, now: float, ttl_s: float, final: bool = False) -> bool:
        with self.lock:
            if self.lease is None or self.lease[0] != holder:
                return True  # lost by expiry: the next holder goes on
            self.state = replace(self.state, cursor=lease.cursor, timer_at=lease.timer_at, service=lease.service,
                                 given=lease.given)
            if self.asked_again and not final:
                self.lease, self.asked_again = (holder, now + ttl_s), False
                lease.per_minute, lease.paused = dict(self.state.per_minute), self.state.paused
                return False
            self.lease = None
            return True

    def limits(self) -> dict[str, float]:
        with self.lock:
            return dict(self.state.per_minute)

    def paused(self) -> bool:
        with self.lock:
            return self.state.paused

    def set_paused(self, paused: bool, now: float) -> None:
        with self.lock:
            self.state = replace(self.state, paused=paused)

    def set_limit(self, key: str, per_minute: float | None, now: float) -> None:
        with self.lock:
            limits = {k: v for k, v in self.state.per_minute.items() if k != key}
            if per_minute is not None:
                limits[key] = per_minute
            self.state = replace(self.state, per_minute=limits)

    def admit(self, caller: str, items: Sequence[Any], body: str, now: float) -> str:
        raise NotImplementedError  # each feature's twin admits its own items

    def admit_many(self, messages: Sequence[tuple[str, Sequence[Any], str]], now: float) -> list[str | None]:
        keys: list[str | None] = []
        with self.lock:
            for caller, items, body in messages:
                try:
                    keys.append(self.admit(caller, items, body, now))
                except StaleWrite:
                    keys.append(None)
        return keys

    def outbox(self, created_before: float) -> list[tuple[str, str]]:
        with self.lock:
            return [(key, body) for key, (at, body) in self.pending_sends.items() if at < created_before]

    def forget_outbox(self, keys: Sequence[str]) -> None:
        with self.lock:
            for key in keys:
                self.pending_sends.pop(key, None)
