"""Rate limits in admission: jobs per minute under a key (a job type, a caller), spread evenly, never in bursts.

Each limit gives out slots `60 / per_minute` seconds apart; a job takes the
next slot of every limit it is under (its type's and its caller's), so it
keeps to all of them. A slot is never earlier than now (no credit piles up
while a key is idle: a burst-free start) and a pass gives out only slots due
within `lookahead_s`, so a changed limit bites at most that long later. A job
is sent with the SQS delay that makes it visible in the wall-clock second of
its slot, so each second holds the limit's share of jobs, as a paced run's
does (runs/pacing.py). Only the passes of the limits' own clock give out
slots (Dispatcher._keep_time), so the second's jobs become visible at one
steady moment in it. The state is each key's latest slot, kept with the
dispatcher's lease (models.Lease).
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from chalicelib.admission.models import Lease

LOOKAHEAD_S = 1.5  # slots given out this far ahead; a pass comes about every second while jobs are held back


@dataclass
class Limiter:
    """One pass's view of the rate limits; `take` advances `lease.last_at`, which the pass writes back."""

    lease: Lease
    now: float
    lookahead_s: float = LOOKAHEAD_S
    gives_slots: bool = True  # False: a pass off the limits' clock, where every limited job waits for it
    held: set[str] = field(default_factory=set)  # keys that turned a job away in this pass

    def _interval(self, key: str) -> float:
        return 60.0 / self.lease.per_minute[key]

    def _next_slot(self, key: str) -> float:
        last = self.lease.last_at.get(key)
        return self.now if last is None else max(self.now, last + self._interval(key))

    def allowance(self, key: str, wanted: int) -> int:
        """How many of `wanted` jobs the key's limit lets through in this pass (all of them if it has none)."""
        if key not in self.lease.per_minute:
            return wanted
        if not self.gives_slots:
            self.held.add(key)
            return 0
        first = self._next_slot(key)
        horizon = self.now + self.lookahead_s
        allowed = 0 if first > horizon else math.floor((horizon - first) / self._interval(key) + 1e-9) + 1
        if allowed < wanted:
            self.held.add(key)
        return min(allowed, wanted)

    def take(self, keys: Iterable[str]) -> float | None:
        """The time of the slot a job under `keys` may run at (now, if none is limited), or None if one of its
        limits has no slot left in this pass (that key is then `held`)."""
        limited = [key for key in keys if key in self.lease.per_minute]
        if not limited:
            return self.now
        if not self.gives_slots:
            self.held.update(limited)
            return None
        slot = max(self._next_slot(key) for key in limited)
        if slot > self.now + self.lookahead_s:
            self.held.update(key for key in limited if self._next_slot(key) > self.now + self.lookahead_s)
            return None
        for key in limited:
            self.lease.last_at[key] = slot
        return slot

    def delay(self, slot: float) -> int:
        """The SQS delay (whole seconds) that makes a message visible in the wall-clock second of `slot`."""
        return max(0, math.ceil(math.floor(slot) - self.now))
