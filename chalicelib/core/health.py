"""What GET /api/health answers: one check per dependency, and whether all of them passed."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class HealthCheck(BaseModel):
    ok: bool
    detail: Any = Field(description="the queue's depth or the table's status, or the error that failed the check")


class Health(BaseModel):
    status: Literal["ok", "unhealthy"]
    checks: dict[str, HealthCheck] = Field(description="jobs_queue, state_table, results_table, typed_jobs_table")
