"""Pacer's configuration: every setting, from `PACER_*` environment variables (per stage in .chalice/config.json)."""
from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from chalicelib.resources import (
    DATALAKE_BUCKET, JOBS_DLQ, JOBS_QUEUE, RESULTS_TABLE, STATE_TABLE, TICKS_QUEUE, TYPED_JOBS_TABLE,
)
from chalicelib.runs.pacing import PaceSettings


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PACER_")

    stage: str = "local"
    state_table: str = STATE_TABLE.name
    results_table: str = RESULTS_TABLE.name
    typed_jobs_table: str = TYPED_JOBS_TABLE.name
    jobs_queue: str = JOBS_QUEUE.name
    jobs_dlq: str = JOBS_DLQ.name
    ticks_queue: str = TICKS_QUEUE.name
    datalake_bucket: str = DATALAKE_BUCKET.name

    admin_token: str = ""  # empty: admin endpoints refuse everyone
    heartbeat_s: float = 10.0
    # PUT /api/workers' ceiling (1-100): each local worker is an OS process, so a small machine may want fewer.
    max_worker_concurrency: int = Field(default=100, ge=1, le=100)
    worker_down_after_s: float = 120.0  # a worker or a bot silent this long shows `down`
    # Bots (chalicelib/bots/): a claim's lease, renewed by each heartbeat; a bot that beats every 30 s misses two.
    bot_lease_s: float = Field(default=90.0, ge=1.0, le=3600.0)
    # The job types that run on bots when a submit names no `target` (JSON: '["report"]'); others run on Lambda.
    bot_job_types: frozenset[str] = frozenset()

    # Seed 004's steady supply (POST /api/jobs/populate, and the populate_jobs schedule): a batch of
    # `populate_batch_size` typed jobs of `populate_type` (None: each type in turn) every `populate_interval_s`;
    # None (the default) turns the schedule off. The schedule looks each minute, so the interval is 60 s or more.
    populate_interval_s: float | None = Field(default=None, ge=60.0, le=7 * 24 * 3600.0)
    populate_batch_size: int = Field(default=5, ge=1, le=100)
    populate_type: str | None = None
    # PUT /api/bots/count's ceiling: the local stack runs each reference bot as an OS process.
    max_bots: int = Field(default=10, ge=0, le=100)

    # Drills only: faults injected on purpose.
    failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)  # share of job attempts that raise
    drill_duplicate_sends: bool = False  # send every message twice
    # Benchmarks only: a folder where each process writes how many AWS calls it made (aws/metering.py).
    aws_call_log: str = ""

    lookahead_s: float = 1.0
    max_in_flight: int = 2000
    jobs_per_message: int = 50
    max_attempts: int = 3
    retry_base_s: float = 1.0
    retry_max_s: float = 60.0

    # Fair compute (issue #5): its own in-flight window, small messages so callers interleave finely.
    compute_max_digits: int = Field(default=200, ge=1)
    compute_max_in_flight: int = 100
    compute_jobs_per_message: int = 10
    compute_budget_s: float = 10.0  # per job; a number not factored in time fails with "budget exceeded"

    # Follow-up admission (admission/service.py): a process dispatches inline for a submit only after this long
    # without a pass made or asked for; otherwise it asks through the ticks queue. 0: every submit dispatches inline.
    admission_ask_every_s: float = Field(default=0.5, ge=0.0)

    # Typed jobs: their own window, admitted highest priority first within each caller's share; a higher
    # priority that arrives later waits for at most a window of jobs already sent.
    typed_max_in_flight: int = Field(default=50, ge=1)
    typed_jobs_per_message: int = Field(default=10, ge=1, le=100)
    executor_latency_s: float = Field(default=0.05, ge=0.0, le=25.0)  # each attempt's simulated work

    # The datalake's export: a page ends at the first object boundary past this many records (docs: README).
    datalake_page_records: int = Field(default=5000, ge=1)

    # Many pollers share one read per this interval and API process: GET /api/status, and a page of GET /api/jobs
    # (whose index is eventually consistent on AWS anyway). A write through the same process drops them. 0: none.
    read_cache_s: float = Field(default=0.5, ge=0.0)
    # Bigger than the largest valid body with room: a compute batch of 100 numbers of compute_max_digits (200)
    # is about 20 KB of JSON. Over it, 413.
    max_body_bytes: int = 32 * 1024

    @property
    def pace(self) -> PaceSettings:
        return PaceSettings(
            lookahead_s=self.lookahead_s, max_in_flight=self.max_in_flight, jobs_per_message=self.jobs_per_message
        )
