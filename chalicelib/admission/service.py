"""Follow-up admission: after a submit, a cancel, a retry or a settled message, fill the freed window.

Best effort: the job is stored whatever happens here, and the next trigger (a
submit, a settled message, the one-minute watchdog) admits it.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from chalicelib.admission.dispatcher import Dispatcher
from chalicelib.core.jobs import JobEnvelope, Origin
from chalicelib.core.validation import check_caller

log = logging.getLogger(__name__)


@dataclass
class Admission:
    dispatchers: Mapping[Origin, Dispatcher[Any]]  # paced runs have none: their ticks admit them
    clock: Callable[[], float] = field(default=time.time)

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

    def after_settled(self, envelope: JobEnvelope) -> None:
        """A message's jobs are settled: its slots are free, so admit the next fair share while the batch goes on."""
        self.admit(envelope.origin)

    def admit_all(self) -> dict[str, int]:
        return {origin: self.admit(origin) for origin in self.dispatchers}

    def set_weight(self, caller: str | None, weight: float, now: float) -> dict[str, Any]:
        """Weigh a caller in every way in's fair shares (a caller is one identity across them); the next
        dispatch uses it."""
        caller = check_caller(caller)
        for dispatcher in self.dispatchers.values():
            dispatcher.store.set_weight(caller, weight, now)
        return {"caller": caller, "weight": weight}
