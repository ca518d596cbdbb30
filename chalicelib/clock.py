"""Pacer's clock: the ticks queue's messages, and the one-minute watchdog.

Three features share the ticks queue: a paced run's self-rescheduling ticks
(runs/pacing.py), the wake-ups of scheduled typed jobs (typed/service.py), and
throttled submits' requests for an admission pass (admission/service.py).
The watchdog runs each feature's duty that a lost message would otherwise
leave undone: it restarts a run's dead tick chain, admits what waits in the
fair backlogs, sends wake-ups for typed jobs that fall due before it runs
again, and hands back the jobs of bots whose lease ran out (a claim does that
too, but no bot may be claiming).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from pydantic import TypeAdapter

from chalicelib.admission.models import AdmitRequest
from chalicelib.admission.service import Admission
from chalicelib.core.queue import MessageQueue
from chalicelib.runs.models import Tick
from chalicelib.runs.pacing import Pacer
from chalicelib.typed import service as typed
from chalicelib.typed.models import WakeUp
from chalicelib.typed.store import TypedJobStore

log = logging.getLogger(__name__)
CLOCK_MESSAGES: TypeAdapter[Tick | WakeUp | AdmitRequest] = TypeAdapter(Tick | WakeUp | AdmitRequest)


@dataclass
class Clock:
    pacer: Pacer
    admission: Admission
    typed_jobs: TypedJobStore
    ticks: MessageQueue
    bot_leases: Callable[[float], int] | None = None  # hands back bot jobs whose lease ran out (bots/service.py)

    def on_message(self, body: str, now: float) -> str:
        """One message of the ticks queue: a run's tick, a scheduled typed job's wake-up, or a request to admit."""
        message = CLOCK_MESSAGES.validate_json(body)
        if isinstance(message, AdmitRequest):
            admit = self.admission.admit_early if message.early else self.admission.admit
            return f"admitted {admit(message.admit)}"
        if isinstance(message, WakeUp):
            return typed.on_wake_up(message, self.typed_jobs, self.ticks, self.admission, now)
        return self.pacer.handle_tick(message, now)

    def watchdog(self, now: float) -> dict[str, object]:
        report: dict[str, object] = {"runs": self.pacer.watchdog(now)}
        try:  # what fell due and whose wake-up was lost (its send is best effort)
            report["promoted"] = typed.promote_due(self.typed_jobs, self.ticks, now)
        except Exception:
            log.exception("could not promote scheduled jobs; their wake-ups or the next watchdog do")
        report["admitted"] = self.admission.admit_all()
        try:
            report["wake_ups"] = typed.wake_ups_due_soon(self.typed_jobs, self.ticks, now)
        except Exception:
            log.exception("could not send wake-ups for scheduled jobs; the next watchdog admits them")
        if self.bot_leases is not None:
            try:
                report["bot_leases_reclaimed"] = self.bot_leases(now)
            except Exception:
                log.exception("could not reclaim bots' expired leases; the next claim or watchdog does")
        return report
