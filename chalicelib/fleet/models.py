"""The fleet's models: what a worker says of itself, the view of all of them, and the counts an admin sets."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from chalicelib.core.validation import Request, setting_limits


class SetConcurrency(Request):
    concurrency: int = Field(ge=1, le=100, description="job-worker processes (AWS: MaximumConcurrency, at least 2)",
                             json_schema_extra=setting_limits(maximum="max_worker_concurrency"))


class SetBotCount(Request):
    count: int = Field(ge=0, le=100, description="reference bots the local stack keeps running; advisory on AWS, "
                                                 "where bots run on their owners' machines",
                       json_schema_extra=setting_limits(maximum="max_bots"))


class BotCount(BaseModel):
    count: int | None = Field(description="reference bots the local stack keeps running (`make up` starts or stops "
                                          "`python -m infra.bot` processes to match within about 2 s); null until "
                                          "set; advisory on AWS")


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
