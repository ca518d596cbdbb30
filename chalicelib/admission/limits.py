"""Rate limits in admission: jobs per minute under a key (a job type, a caller), spread evenly, never in bursts.

Each limit gives out slots `60 / per_minute` seconds apart; a job takes the
next slot of every limit it is under (its type's and its caller's), so it
keeps to all of them. A job is sent with the SQS delay (whole seconds) that
makes it visible in the wall-clock second of its slot, so each second holds
the limit's share, as a paced run's does (runs/pacing.py).

SQS delays are whole seconds, so a job given out at `now` becomes visible at
the same fraction of a second as `now`. Were the passes that give out a
second's slots at different fractions (passes come whenever a submit or a
settled message asks), the second's jobs would become visible at several
moments, and those late in the second would start in the next one. So only
a pass in the first half of a second (`GIVING_PHASE`) gives out slots: the
rest of its own second's (from the second's start: a second whose early
passes were missed is caught up, never doubled) and the whole next second's.
A pass in the second half gives out none; the jobs wait for the next early
pass, at most about a second. A changed limit therefore bites from the
second after next at the latest: within 2 s.

The state is each key's latest slot, kept with the dispatcher's lease
(models.Lease).

Bots' claims (chalicelib/bots/) keep to the same limits on the same grid:
`claim_window` is the wall-clock second a claim falls in and how many of a
limit's slots lie in it (for a limit slower than one a second, the slot's
whole interval, holding one), and a claim takes one of them with a
conditional counter per limit and window in its own transaction, so
concurrent claims never take more (bots/dynamo.py). A bot cannot be handed a
slot ahead, as an SQS delay hands one, so a claim takes only its own
window's. The counters are the bots' own: a limit caps Lambda's admissions
and bots' claims each, not the two together.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from chalicelib.admission.models import Lease

GIVING_PHASE = 0.5  # only a pass this early in its second gives out slots
SECONDS_GIVEN = 2  # such a pass gives out the slots of its own second and the next
# Slots lie on a grid of multiples of the interval from the epoch, so they do not drift as they are added up; at
# today's epoch a float is exact to about 2e-7 s, so a slot within EPSILON_S of a second's start is in that second.
EPSILON_S = 1e-5


@dataclass(frozen=True)
class ClaimWindow:
    """The stretch of time a bot's claim takes a limit's slot from, and how many slots lie in it."""

    start: float
    end: float
    slots: int


def claim_window(per_minute: float, now: float) -> ClaimWindow:
    """For a limit of a slot or more a second, now's wall-clock second and the slots of the grid in it (over any
    minute they add up to `per_minute`); for a slower one, the one slot's interval on the grid that holds now
    (a 5-a-minute limit: one claim in each 12 s, whenever in it, so a poll that skips a second loses no slot)."""
    interval = 60.0 / per_minute
    if interval >= 1.0:
        start = math.floor(now / interval + EPSILON_S / interval) * interval
        return ClaimWindow(start, start + interval, 1)

    def slots_before(moment: float) -> int:
        return math.ceil(moment / interval - EPSILON_S / interval)

    second = math.floor(now)
    return ClaimWindow(float(second), second + 1.0, slots_before(second + 1) - slots_before(second))


@dataclass
class Limiter:
    """One pass's view of the rate limits; `take` advances `lease.last_at`, which the pass writes back."""

    lease: Lease
    now: float
    held: set[str] = field(default_factory=set)  # keys that turned a job away in this pass

    @property
    def _second(self) -> int:
        return math.floor(self.now)

    @property
    def _horizon(self) -> float:
        """Slots before this time are given out in this pass (none at all late in a second)."""
        giving = self.now - self._second < GIVING_PHASE
        return float(self._second + (SECONDS_GIVEN if giving else 0))

    def _interval(self, key: str) -> float:
        return 60.0 / self.lease.per_minute[key]

    def _next_slot(self, key: str) -> float:
        interval = self._interval(key)
        last = self.lease.last_at.get(key)
        earliest = float(self._second) if last is None else max(float(self._second), last + interval)
        return math.ceil(earliest / interval - EPSILON_S / interval) * interval

    def allowance(self, key: str, wanted: int) -> int:
        """How many of `wanted` jobs the key's limit lets through in this pass (all of them if it has none)."""
        if key not in self.lease.per_minute:
            return wanted
        first = self._next_slot(key)
        allowed = max(0, math.ceil((self._horizon - EPSILON_S - first) / self._interval(key)))
        if allowed < wanted:
            self.held.add(key)
        return min(allowed, wanted)

    def take(self, keys: Iterable[str]) -> float | None:
        """The time of the slot a job under `keys` may run at (now, if none is limited), or None if one of its
        limits has no slot left in this pass (that key is then `held`)."""
        limited = [key for key in keys if key in self.lease.per_minute]
        if not limited:
            return self.now
        slot = max(self._next_slot(key) for key in limited)
        horizon = self._horizon - EPSILON_S
        if slot >= horizon:
            self.held.update(key for key in limited if self._next_slot(key) >= horizon)
            return None
        for key in limited:
            self.lease.last_at[key] = slot
        return slot

    def delay(self, slot: float) -> int:
        """The SQS delay (whole seconds) that makes a message visible in the wall-clock second of `slot`."""
        return max(0, math.floor(slot + EPSILON_S) - self._second)
