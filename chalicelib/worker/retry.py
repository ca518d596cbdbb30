"""The retry policy every job shares, and the drills' injected failures."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

from chalicelib.core.jobs import SQS_MAX_DELAY_S


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 3
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0

    def delay_before(self, attempt: int, rng: Callable[[], float] = random.random) -> int:
        """Full jitter: uniform in [0, base * 2^(attempt-2)], capped, for the `attempt`th try."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** max(0, attempt - 2))
        return min(SQS_MAX_DELAY_S, int(round(ceiling * rng())))


class InjectedFailure(RuntimeError):
    """A failure the drills asked for (PACER_FAILURE_RATE)."""


def with_injected_failures(compute: Callable[[int], list[int]], rate: float,
                           rng: Callable[[], float] = random.random) -> Callable[[int], list[int]]:
    if rate <= 0:
        return compute

    def faulty(number: int) -> list[int]:
        if rng() < rate:
            raise InjectedFailure(f"injected failure (failure rate {rate})")
        return compute(number)

    return faulty
