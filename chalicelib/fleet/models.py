"""The fleet's models: what a worker says of itself, and the view of all of them."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from chalicelib.core.validation import Request, setting_limits


class SetConcurrency(Request):
    concurrency: int = Field(ge=1, le=100, description="job-worker processes (AWS: MaximumConcurrency, at least 2)",
                             json_schema_extra=setting_limits(maximum="max_worker_concurrency"))


class WorkerBeat(BaseModel):
    """What a worker process last said about itself."""

    worker_id: str
    state: Literal["idle", "busy", "stopped"]
    started_at: float
    last_beat_at: float
    jobs_done: int = 0


class WorkerView(BaseModel):
    id: str
    state: Literal["idle", "busy", "stopped", "down"]
    started_at: str
    last_beat_at: str
    seconds_since_beat: float
    jobs_done: int


class Fleet(BaseModel):
    concurrency: int | None
    down_after_s: float
    workers: list[WorkerView]
