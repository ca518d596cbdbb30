"""Follow-up admission, amortised: submits, cancels, retries and settled messages ask for it; few passes run.

A dispatch pass costs a fixed number of AWS calls (the lease, the callers'
counts, a backlog read per caller, the outbox) whatever it admits, so the
calls per job fall as each pass admits more. Two rules keep passes few while
no job waits long:

- **Asking from the API** (`request`): a process dispatches inline only if
  it has made or asked for no pass in the last `ask_every_s`. Otherwise the
  submit sends one `AdmitRequest` on the ticks queue, delayed a second,
  unless one such request of this process is already on its way (its pass
  comes after this submit). A burst of submits therefore costs one pass at
  its start and one a second later, a steady stream one pass a second, and
  the last submit of either is admitted within about a second even if
  nothing else happens.
- **Refilling from the worker** (`after_settled`, `after_batch`): the worker
  counts the slots its settled messages freed and dispatches once they reach
  a third of the origin's window. At the end of each batch it asks, as a
  submit does, for what is left: a worker ending many small batches a second
  dispatches at most once per `ask_every_s`. The window stays busy (two
  thirds of it are still in flight when the refill comes) at a pass per
  third of a window instead of a pass per message. A quarter cost 14% more
  calls per job through the batch endpoint for the same jobs/s and the same
  fairness (bench/calls.py, bench/ways_in.py, bench/fairness.py, alternating).

Best effort throughout: the job is stored whatever happens here, and the next
trigger (a submit, a settled message, the one-minute watchdog) admits it.
Each process keeps its own counts; on Lambda an execution environment is a
process, so the rules hold per environment.
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from chalicelib.admission.dispatcher import Dispatcher
from chalicelib.admission.limits import next_giving_moment
from chalicelib.admission.models import ASK_DELAY_S, ask_for_pass
from chalicelib.core.jobs import JobEnvelope, Origin
from chalicelib.core.queue import MessageQueue
from chalicelib.core.validation import check_caller

log = logging.getLogger(__name__)

REFILL_SHARE = 3  # the worker refills once a third of the window is free
EARLY_MARGIN_S = 0.001  # a timer waiting for a second's start wakes this far into it


@dataclass
class Admission:
    dispatchers: Mapping[Origin, Dispatcher[Any]]  # paced runs have none: their ticks admit them
    ticks: MessageQueue  # where a throttled request goes: an AdmitRequest comes back as `admit`
    ask_every_s: float = 0.5  # a submit passes inline only after this long without a pass made or asked for (0: always)
    clock: Callable[[], float] = field(default=time.time)
    sleep: Callable[[float], None] = field(default=time.sleep)
    _passed_at: dict[Origin, float] = field(default_factory=dict, init=False)  # this process's last inline pass
    _asked_for: dict[Origin, float] = field(default_factory=dict, init=False)  # when its last asked-for pass is due
    _freed: dict[Origin, int] = field(default_factory=dict, init=False)
    _asking: threading.Lock = field(default_factory=threading.Lock, init=False)

    def admit(self, origin: Origin) -> int:
        """Run the origin's dispatcher once; the jobs it admitted (0 if it failed, or another one ran)."""
        dispatcher = self.dispatchers.get(origin)
        if dispatcher is None:
            return 0
        try:
            return dispatcher.dispatch(self.clock())
        except Exception:
            log.exception("%s admission failed; the next trigger retries", origin)
            return 0

    def admit_early(self, origin: Origin) -> int:
        """A rate limit's timer (limits.py): admit early in a second, where a pass gives out slots; the timer came
        later, so wait for the next second's start (at most 1 - GIVING_PHASE s, on the ticks function)."""
        now = self.clock()
        wait = next_giving_moment(now) - now
        if wait > 0:
            self.sleep(wait + EARLY_MARGIN_S)
        return self.admit(origin)

    def request(self, origin: Origin) -> None:
        """Jobs of `origin` became admissible (a submit, a cancel, a retry): admit them soon (see the module)."""
        if origin not in self.dispatchers:
            return
        now = self.clock()
        with self._asking:  # an API process serves submits on many threads: one of them dispatches, or asks
            asked_for = self._asked_for.get(origin, -math.inf)
            inline = now - max(self._passed_at.get(origin, -math.inf), asked_for) >= self.ask_every_s
            ask = not inline and asked_for <= now
            if inline:
                self._passed_at[origin] = now
            elif ask:
                self._asked_for[origin] = now + ASK_DELAY_S
        if inline:
            self.admit(origin)
        elif ask:
            try:
                self.ticks.send([ask_for_pass(origin)])
            except Exception:
                log.exception("could not ask for %s admission; dispatching now", origin)
                with self._asking:
                    self._asked_for[origin] = now
                self.admit(origin)

    def after_settled(self, envelope: JobEnvelope) -> None:
        """A message's jobs are settled: their slots are free. Refill once a third of the window is."""
        dispatcher = self.dispatchers.get(envelope.origin)
        if dispatcher is None:
            return
        freed = self._freed.get(envelope.origin, 0) + len(envelope.jobs)
        self._freed[envelope.origin] = freed
        if freed >= max(1, dispatcher.max_in_flight // REFILL_SHARE):
            self._freed[envelope.origin] = 0
            self.admit(envelope.origin)

    def after_batch(self) -> None:
        """The worker's batch is over: ask for a refill of what its settled messages freed and no pass has refilled
        yet, as a submit asks (`request`): a worker ending batches many times a second dispatches at most once per
        `ask_every_s`, and a delayed ask covers the rest."""
        for origin, freed in list(self._freed.items()):
            if freed:
                self._freed[origin] = 0
                self.request(origin)

    def admit_all(self) -> dict[str, int]:
        return {origin: self.admit(origin) for origin in self.dispatchers}

    def set_weight(self, caller: str | None, weight: float, now: float) -> dict[str, Any]:
        """Weigh a caller in every way in's fair shares (a caller is one identity across them); the next
        dispatch uses it."""
        caller = check_caller(caller)
        for dispatcher in self.dispatchers.values():
            dispatcher.store.set_weight(caller, weight, now)
        return {"caller": caller, "weight": weight}
