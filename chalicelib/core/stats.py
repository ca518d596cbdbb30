"""The one percentile: nearest rank, as the API's p50/p95/p99 figures give it."""
from __future__ import annotations

import math
from typing import Sequence


def percentile(values: Sequence[float], share: float, digits: int = 6) -> float | None:
    """The nearest-rank percentile (`share` from 0 to 1, so 0.95 is p95), rounded; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(share * len(ordered))))
    return round(ordered[rank - 1], digits)
