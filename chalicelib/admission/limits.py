"""Rate limits in admission: jobs per minute under a key (a job type, a caller), spread evenly, never in bursts.

A limit divides time into windows (`limit_window`): for a limit of a job a
second or more, each wall-clock second, holding the slots of a grid
`60 / per_minute` seconds apart that fall in it (over any minute they add up
to `per_minute`); for a slower one, each interval of the grid, holding one.
A job takes a slot in a window of every limit it is under (its type's and
its caller's), so it keeps to all of them. The jobs given out in each
window not yet over are counted (`Lease.given`); nothing else is kept.

A job is sent with the SQS delay (whole seconds) that makes it visible in
its wall-clock second, so each second holds the limit's share, as a paced
run's does (runs/pacing.py). SQS delays are whole seconds, so a job sent at
`t` becomes visible at the same fraction of a second as `t`, and a job made
visible late in its second starts in the next one on a busy worker. Passes
come whenever a submit, a settled message or the timer asks, and a pass
can wait for the lease behind another, so two rules keep every second's
jobs starting in that second:

- A pass gives out the slots of the next second whenever it runs, and those
  of its own second only early in it (`GIVING_PHASE`): a second whose early
  passes were missed is caught up, never doubled, and a job is never made
  visible late in its own second.
- A message for a later second sent in the second half of a second
  (`HOLD_FROM`) goes a second early: visible at once or a second on, and
  the worker holds it until its second starts (`JobEnvelope.not_before`,
  at most a second, after the batch's other messages). Sent early in a
  second, it is delayed into its own and not held.

The delay is reckoned when the message is sent (`delay_until`), so a pass
that runs into the next second does not push its jobs a second late.

While a limit holds jobs back, the dispatcher asks for the next pass itself,
a second on, on the ticks queue: the timer. Each pass ends a little later
in its second than the last began (its own work, and the queue's latency),
so a timer that asked exactly a second on would drift out of the early part
of the second, and catch up no missed second. A timer that comes late waits
for the next second's start instead (`next_giving_moment`, at most
1 - GIVING_PHASE s), so every second has an early pass.

A changed limit bites within 2 s. The next pass counts the next second's
jobs already sent against the new limit: a raised limit tops that second up
to its new share, so the new rate holds from the second after the change
(or from the change's own, before its early pass); a lowered one gives it no
more, and the seconds after hold the new share.

The counts are kept with the dispatcher's lease (models.Lease).

Bots' claims (chalicelib/bots/) keep to the same limits in the same windows:
a claim takes a slot of the window it falls in with a conditional counter
per limit and window in its own transaction, so concurrent claims never
take more (bots/dynamo.py). A bot cannot be handed a slot ahead, as an SQS
delay hands one, so a claim takes only its own window's. The counters are
the bots' own: a limit caps Lambda's admissions and bots' claims each, not
the two together.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from chalicelib.admission.models import Lease

GIVING_PHASE = 0.3  # only a pass this early in its second gives out its own second's slots (any, the next second's)
HOLD_FROM = 0.5  # a message for a later second sent this late in a second goes a second early, held by the worker
MAX_HOLD_S = 1.0  # so a worker holds a message at most this long
# Slots lie on a grid of multiples of the interval from the epoch, so they do not drift as they are added up; at
# today's epoch a float is exact to about 2e-7 s, so a slot within EPSILON_S of a second's start is in that second.
EPSILON_S = 1e-5


@dataclass(frozen=True)
class LimitWindow:
    """A stretch of time a limit counts its jobs in (admissions and bots' claims apart), and how many slots lie in it."""

    start: float
    end: float
    slots: int


def limit_window(per_minute: float, now: float) -> LimitWindow:
    """For a limit of a slot or more a second, now's wall-clock second and the slots of the grid in it (over any
    minute they add up to `per_minute`); for a slower one, the one slot's interval on the grid that holds now
    (a 5-a-minute limit: one claim in each 12 s, whenever in it, so a poll that skips a second loses no slot)."""
    interval = 60.0 / per_minute
    if interval >= 1.0:
        start = math.floor(now / interval + EPSILON_S / interval) * interval
        return LimitWindow(start, start + interval, 1)

    def slots_before(moment: float) -> int:
        return math.ceil(moment / interval - EPSILON_S / interval)

    second = math.floor(now)
    return LimitWindow(float(second), second + 1.0, slots_before(second + 1) - slots_before(second))


@dataclass
class Limiter:
    """One pass's view of the rate limits; `take` counts each job into `lease.given`, which the pass writes back."""

    lease: Lease
    now: float
    held: set[str] = field(default_factory=set)  # keys that turned a job away in this pass

    def __post_init__(self) -> None:
        # Only limits still in force, and only their windows not yet over, are counted (and written back).
        self.lease.given = {key: live for key, windows in self.lease.given.items() if key in self.lease.per_minute
                            and (live := {start: n for start, n in windows.items()
                                          if limit_window(self.lease.per_minute[key], start).end > self.now})}

    @property
    def _second(self) -> int:
        return math.floor(self.now)

    @property
    def _seconds(self) -> range:
        """The wall-clock seconds this pass gives out slots in: the next, and its own too if it is early in it."""
        return range(self._second if in_giving_phase(self.now) else self._second + 1, self._second + 2)

    def _window(self, key: str, second: int) -> LimitWindow:
        return limit_window(self.lease.per_minute[key], float(second))

    def _room(self, key: str, window: LimitWindow) -> int:
        return window.slots - self.lease.given.get(key, {}).get(window.start, 0)

    def allowance(self, key: str, wanted: int) -> int:
        """How many of `wanted` jobs the key's limit lets through in this pass (all of them if it has none)."""
        if key not in self.lease.per_minute:
            return wanted
        windows = {w.start: w for w in (self._window(key, second) for second in self._seconds)}
        allowed = sum(max(0, self._room(key, window)) for window in windows.values())
        if allowed < wanted:
            self.held.add(key)
        return min(allowed, wanted)

    def take(self, keys: Iterable[str]) -> float | None:
        """The time of the slot a job under `keys` may run at (now, if none is limited; else the start of the first
        second with room under all its limits), or None if one of its limits has none left in this pass (that
        key is then `held`)."""
        limited = [key for key in keys if key in self.lease.per_minute]
        if not limited:
            return self.now
        for second in self._seconds:
            windows = [(key, self._window(key, second)) for key in limited]
            if all(self._room(key, window) > 0 for key, window in windows):
                for key, window in windows:
                    given = self.lease.given.setdefault(key, {})
                    given[window.start] = given.get(window.start, 0) + 1
                return float(second)
        full = {key for key in limited if all(self._room(key, self._window(key, second)) <= 0 for second in self._seconds)}
        self.held.update(full or limited)  # none full: its limits have room only in different seconds
        return None


def slot_second(slot: float) -> int:
    """The wall-clock second a slot lies in (see EPSILON_S)."""
    return math.floor(slot + EPSILON_S)


def delay_until(slot: float, now: float) -> int:
    """The SQS delay (whole seconds) of a message sent at `now` whose jobs' slots lie in `slot`'s second: visible in
    that second, or, sent late in a second (HOLD_FROM), a second early, for the worker to hold (`not_before`)."""
    ahead = slot_second(slot) - math.floor(now)
    if ahead > 0 and now - math.floor(now) >= HOLD_FROM:
        ahead -= 1
    return max(0, ahead)


def not_before(slot: float, now: float) -> float | None:
    """When the jobs of a message whose slots lie in `slot`'s second may start, for a pass at `now`: that second's
    start if it is a later one (the message may be sent a second early: delay_until), else None (at once)."""
    second = slot_second(slot)
    return float(second) if second > math.floor(now) else None


def in_giving_phase(moment: float) -> bool:
    """Whether a pass at `moment` is early enough in its second to give out slots."""
    return moment - math.floor(moment) < GIVING_PHASE


def next_giving_moment(moment: float) -> float:
    """`moment` if a pass then gives out slots, else the next second's start."""
    return moment if in_giving_phase(moment) else math.floor(moment) + 1.0
