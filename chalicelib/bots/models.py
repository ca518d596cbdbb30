"""Bots' models: a registered bot as stored, what the API takes from a bot, and what it answers."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from chalicelib.core.validation import Request

MAX_BOT_JOBS = 10  # jobs one bot may hold at once (seed 004 says one; the registration may ask for more)
MAX_CLAIM_WAIT_S = 20  # a claim's long poll: well inside API Gateway's 29 s
MAX_LABELS = 20


class RegisterBot(Request):
    name: str = Field(min_length=1, max_length=100, description="a name for people: the bot's host, its role")
    labels: dict[str, str] = Field(default_factory=dict, max_length=MAX_LABELS,
                                   description="free-form tags, up to 20 (`gpu: a100`, `site: lab-2`)")
    job_types: list[str] | None = Field(default=None, min_length=1, max_length=50,
                                        description="the job types it runs; null: every type")
    max_jobs: int = Field(default=1, ge=1, le=MAX_BOT_JOBS, description="jobs it may hold at once (1: one at a time)")
    lease_s: float | None = Field(default=None, ge=5, le=3600, allow_inf_nan=False, strict=False,
                                  description="its claims' lease; null: the stage's PACER_BOT_LEASE_S (90 s). A bot "
                                              "whose jobs are short may ask for less, so a dead bot's job returns sooner")

    @field_validator("labels")
    @classmethod
    def _short_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            if not 1 <= len(key) <= 64 or len(value) > 256:
                raise ValueError("each label's key must be 1-64 characters and its value at most 256")
        return labels


class Claim(Request):
    job_types: list[str] | None = Field(default=None, min_length=1, max_length=50,
                                        description="only these types this time (within the bot's own)")
    wait_s: float = Field(default=0, ge=0, le=MAX_CLAIM_WAIT_S, allow_inf_nan=False, strict=False,
                          description="long poll: wait up to this long for a job before answering 204")


class Complete(Request):
    result: dict[str, Any] = Field(description="the job's result: a JSON object, stored as the job's `result`")


class Fail(Request):
    error: str = Field(min_length=1, max_length=2000, description="what went wrong, shown on the job")
    retryable: bool = Field(default=True, description="false: fail the job now, without its remaining attempts")


class Bot(BaseModel):
    """A registered bot as stored: never its token, only the token's sha256."""

    id: str
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    job_types: list[str] | None = None
    max_jobs: int = 1
    lease_s: float | None = None  # None: the stage's PACER_BOT_LEASE_S
    token_hash: str
    registered_at: float
    last_beat_at: float
    lease_until: float = 0.0  # every job it holds is leased until then; a heartbeat renews it
    holding: dict[str, int] = Field(default_factory=dict)  # job id -> the attempt it holds
    jobs_done: int = 0
    jobs_failed: int = 0  # attempts it reported failed
    leases_lost: int = 0  # jobs taken back from it when its lease ran out


class BotEvent(BaseModel):
    """One line of a bot's history: a job it settled, handed back, or lost."""

    at: float
    job_id: str
    attempt: int
    event: Literal["completed", "failed", "retried", "lease_lost"]
    note: str | None = None


# ---- what the API answers ----

BotState = Literal["idle", "busy", "down"]


class BotSummary(BaseModel):
    id: str
    name: str
    state: BotState = Field(description="`down` after PACER_WORKER_DOWN_AFTER_S (120 s) without a heartbeat")
    labels: dict[str, str]
    job_types: list[str] | None
    max_jobs: int
    lease_s: float | None
    jobs: list[str] = Field(description="the jobs it holds now")
    lease_until: str | None = Field(description="when the jobs it holds go back to their backlog unless it beats")
    registered_at: str
    last_beat_at: str
    seconds_since_beat: float
    jobs_done: int
    jobs_failed: int
    leases_lost: int


class HistoryEntry(BaseModel):
    at: str
    job_id: str
    attempt: int
    event: Literal["completed", "failed", "retried", "lease_lost"]
    note: str | None


class BotView(BotSummary):
    history: list[HistoryEntry] = Field(description="its latest settled, handed back or lost jobs, newest first")


class Registered(BotSummary):
    token: str = Field(description="shown this once: send it as `Authorization: Bearer <token>`; only its hash is kept")


class BotList(BaseModel):
    bots: list[BotSummary]
    down_after_s: float


class ClaimedJob(BaseModel):
    id: str
    type: str
    priority: int
    payload: dict[str, Any]
    caller: str
    attempt: int
    max_attempts: int
    created_at: str


class Claimed(BaseModel):
    job: ClaimedJob
    lease_until: str = Field(description="heartbeat or extend before then, or the job goes back to its backlog")
    lease_s: float


class Leased(BaseModel):
    job_id: str
    lease_until: str
