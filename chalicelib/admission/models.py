"""What admission counts per caller."""
from __future__ import annotations

from pydantic import BaseModel


class CallerCounts(BaseModel):
    caller: str
    backlog: int = 0
    in_flight: int = 0
    done: int = 0
    failed: int = 0
