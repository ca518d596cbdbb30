"""How the worker runs one origin's jobs: the port each way in fills, and the number runner of runs and compute.

The worker knows no origin. It asks the runner of a message's origin whether
the attempts of a message may start (`begin`, all at once: one conditional
write for the message where the origin needs one), to run each (`run`), and to hand a failed one
back before its retry is sent (`requeue`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol, Sequence

from chalicelib.core.jobs import JobSpec


@dataclass(frozen=True)
class Held:
    """Another worker started this attempt less than a Lambda timeout ago, and may still be running it.

    Its message must come back once that worker cannot be: by then the attempt
    is settled (and the message is skipped) or taken over. Dropping it instead
    would leave the job `running` for ever if that worker's write failed.
    """

    retry_after_s: int


# run: go ahead; skip: settled or cancelled already; resend: handed back, but its retry message may be lost.
Begin = Literal["run", "skip", "resend"] | Held


@dataclass(frozen=True)
class Done:
    """What one successful attempt produced: a number's factors, or a typed job's result."""

    factors: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None


class JobRunner(Protocol):
    def begin(self, specs: Sequence[JobSpec], worker: str, now: float) -> list[Begin]:
        """Whether each of a message's attempts may run now, in their order (a conditional write where the origin
        needs one)."""
        ...

    def run(self, spec: JobSpec) -> Done:
        """One attempt of the job's work. Raises on failure; an exception with `permanent = True` is not retried."""
        ...

    def requeue(self, spec: JobSpec, worker: str, note: str, now: float) -> bool:
        """Hand a failed attempt back before its retry is sent. False: it is no longer ours to hand back."""
        ...


@dataclass
class NumberRunner(JobRunner):
    """Paced runs and fair compute: a job is a number to factor. Any attempt may start; nothing is handed back."""

    factor: Callable[[int], list[int]]

    def begin(self, specs: Sequence[JobSpec], worker: str, now: float) -> list[Begin]:
        return ["run"] * len(specs)

    def run(self, spec: JobSpec) -> Done:
        if spec.number is None:
            raise ValueError(f"job {spec.id} has no number to factor")
        return Done(factors=[str(f) for f in self.factor(int(spec.number))])

    def requeue(self, spec: JobSpec, worker: str, note: str, now: float) -> bool:
        return True
