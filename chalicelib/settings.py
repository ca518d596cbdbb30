"""Configuration and the one composition root.

Nothing here runs at import time: `container()` builds settings, boto3
clients and adapters on first use, and `reset_container()` lets tests start
over. Where AWS is comes from boto3's own configuration (`AWS_ENDPOINT_URL`,
`AWS_DEFAULT_REGION`, credentials), so no code path knows whether it talks to
moto, LocalStack or AWS.
"""
from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from functools import cached_property

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from chalicelib.pacing import PaceSettings, Pacer
from chalicelib.fleet import Heartbeat
from chalicelib.resources import JOBS_DLQ, JOBS_QUEUE, RESULTS_TABLE, STATE_TABLE, TASKS_TABLE, TICKS_QUEUE
from chalicelib.worker import JobWorker, RetryPolicy, with_injected_failures


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PACER_")

    stage: str = "local"
    state_table: str = STATE_TABLE.name
    results_table: str = RESULTS_TABLE.name
    tasks_table: str = TASKS_TABLE.name
    jobs_queue: str = JOBS_QUEUE.name
    jobs_dlq: str = JOBS_DLQ.name
    ticks_queue: str = TICKS_QUEUE.name

    admin_token: str = ""  # empty: admin endpoints refuse everyone
    heartbeat_s: float = 10.0
    worker_down_after_s: float = 120.0

    # Drills only: faults injected on purpose.
    failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)  # share of job attempts that raise
    drill_duplicate_sends: bool = False  # send every message twice

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

    # Typed jobs (issue #6): their own window, admitted highest priority first within each caller's share;
    # small messages, so a higher priority that arrives later waits for few jobs already sent.
    task_max_in_flight: int = Field(default=50, ge=1)
    task_jobs_per_message: int = Field(default=5, ge=1, le=100)
    executor_latency_s: float = Field(default=0.05, ge=0.0, le=25.0)  # each attempt's simulated work

    status_cache_s: float = 0.5  # many pollers share one read per this interval
    max_body_bytes: int = 16 * 1024

    @property
    def pace(self) -> PaceSettings:
        return PaceSettings(
            lookahead_s=self.lookahead_s, max_in_flight=self.max_in_flight, jobs_per_message=self.jobs_per_message
        )


def new_token() -> str:
    return secrets.token_hex(8)


class Container:
    """Builds each client and service once, on first use."""

    def __init__(self, settings: Settings | None = None):
        self._settings = settings

    @cached_property
    def settings(self) -> Settings:
        return self._settings or Settings()

    @cached_property
    def session(self):
        import boto3
        return boto3.session.Session()

    def _client(self, service: str):
        from botocore.config import Config
        # chalice local serves many threads; give them a pool to share.
        return self.session.client(service, config=Config(max_pool_connections=64, retries={"mode": "standard"}))

    @cached_property
    def dynamodb(self):
        return self._client("dynamodb")

    @cached_property
    def sqs(self):
        return self._client("sqs")

    @cached_property
    def runs(self):
        from chalicelib.adapters.dynamo import DynamoRunRepository
        return DynamoRunRepository(self.dynamodb, self.settings.state_table)

    @cached_property
    def ledger(self):
        from chalicelib.adapters.dynamo import DynamoResultLedger
        return DynamoResultLedger(self.dynamodb, self.settings.results_table, self.settings.state_table,
                                  self.settings.tasks_table)

    def _queue(self, name: str):
        from chalicelib.adapters.sqs import DuplicatingQueue, SqsQueue
        queue = SqsQueue(self.sqs, name)
        return DuplicatingQueue(queue) if self.settings.drill_duplicate_sends else queue

    @cached_property
    def jobs_queue(self):
        return self._queue(self.settings.jobs_queue)

    @cached_property
    def jobs_dlq(self):
        from chalicelib.adapters.sqs import SqsQueue
        return SqsQueue(self.sqs, self.settings.jobs_dlq)

    @cached_property
    def ticks_queue(self):
        return self._queue(self.settings.ticks_queue)

    @cached_property
    def fleet(self):
        from chalicelib.adapters.dynamo import DynamoFleetStore
        return DynamoFleetStore(self.dynamodb, self.settings.state_table)

    @cached_property
    def failure_log(self):
        from chalicelib.adapters.dynamo import DynamoFailureLog
        return DynamoFailureLog(self.dynamodb, self.settings.state_table)

    @cached_property
    def worker_id(self) -> str:
        # On Lambda, one id per execution environment; locally, per worker process.
        return f"{socket.gethostname()}:{os.getpid()}"

    @cached_property
    def heartbeat(self) -> Heartbeat:
        return Heartbeat(self.fleet, self.worker_id, self.settings.heartbeat_s)

    @cached_property
    def pacer(self) -> Pacer:
        return Pacer(runs=self.runs, jobs=self.jobs_queue, ticks=self.ticks_queue, pace=self.settings.pace,
                     new_token=new_token)

    @cached_property
    def worker(self) -> JobWorker:
        from chalicelib.factoring import prime_factors_within
        policy = RetryPolicy(self.settings.max_attempts, self.settings.retry_base_s, self.settings.retry_max_s)
        budget = self.settings.compute_budget_s
        compute = with_injected_failures(lambda number: prime_factors_within(number, budget), self.settings.failure_rate)
        return JobWorker(ledger=self.ledger, retries=self.jobs_queue, policy=policy, compute=compute,
                         worker_id=self.worker_id, failures=self.failure_log, tasks=self.task_attempts)

    @cached_property
    def compute(self):
        from chalicelib.adapters.dynamo import DynamoComputeStore
        return DynamoComputeStore(self.dynamodb, self.settings.state_table)

    @cached_property
    def dispatcher(self):
        from chalicelib.compute import Dispatcher
        return Dispatcher(store=self.compute, jobs=self.jobs_queue, max_in_flight=self.settings.compute_max_in_flight,
                          jobs_per_message=self.settings.compute_jobs_per_message)

    @cached_property
    def registry(self):
        from chalicelib.executors import REGISTRY
        return REGISTRY

    @cached_property
    def tasks(self):
        from chalicelib.adapters.dynamo import DynamoTaskStore
        return DynamoTaskStore(self.dynamodb, self.settings.tasks_table, self.settings.state_table,
                               self.settings.results_table)

    @cached_property
    def task_attempts(self):
        from chalicelib.jobs import TaskAttempts
        return TaskAttempts(store=self.tasks, registry=self.registry, latency_s=self.settings.executor_latency_s)

    @cached_property
    def task_dispatcher(self):
        """Typed jobs' admission: fair compute's dispatcher over their store, promoting due scheduled jobs and
        admitting nothing while paused (the `ready` hook); each caller's backlog is highest priority first."""
        from chalicelib.compute import Dispatcher
        from chalicelib.jobs import task_job_spec
        return Dispatcher(store=self.tasks, jobs=self.jobs_queue, max_in_flight=self.settings.task_max_in_flight,
                          jobs_per_message=self.settings.task_jobs_per_message, origin="task",
                          job_spec=task_job_spec, ready=self.tasks.prepare_admission)

    @cached_property
    def status_cache(self) -> "StatusCache":
        return StatusCache(self.settings.status_cache_s)

    def health(self) -> dict:
        """Check that the queue and the tables answer. Used by GET /api/health."""
        checks = {}
        for name, probe in (
            ("jobs_queue", lambda: self.jobs_queue.depth()),
            ("state_table", lambda: self.dynamodb.describe_table(TableName=self.settings.state_table)["Table"]["TableStatus"]),
            ("results_table", lambda: self.dynamodb.describe_table(TableName=self.settings.results_table)["Table"]["TableStatus"]),
            ("tasks_table", lambda: self.dynamodb.describe_table(TableName=self.settings.tasks_table)["Table"]["TableStatus"]),
        ):
            try:
                checks[name] = {"ok": True, "detail": probe()}
            except Exception as exc:  # health reports every failure, whatever it is
                checks[name] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
        return checks


class StatusCache:
    """One status read per interval, shared by every poller; writes through the API invalidate it.

    A read that was under way when a write invalidated the cache is answered
    but not kept: it may predate the write.
    """

    def __init__(self, ttl_s: float):
        self._ttl = ttl_s
        self._lock = threading.Lock()  # held by the one loader
        self._state = threading.Lock()  # held briefly, so an invalidation cannot land between check and store
        self._entry: tuple[object, float] | None = None  # (value, when it was read), replaced whole
        self._generation = 0

    def _fresh(self):
        entry = self._entry  # one read: an invalidation cannot empty it between the check and the return
        return entry[0] if entry is not None and time.monotonic() - entry[1] < self._ttl else None

    def get(self, load):
        if (value := self._fresh()) is not None:
            return value
        with self._lock:  # one loader at a time; the others wait and reuse its answer
            if (value := self._fresh()) is not None:
                return value
            generation = self._generation
            value = load()
            with self._state:
                if generation == self._generation:
                    self._entry = (value, time.monotonic())
            return value

    def invalidate(self) -> None:
        with self._state:
            self._generation += 1
            self._entry = None


_container: Container | None = None
_container_lock = threading.Lock()


def container() -> Container:
    global _container
    with _container_lock:
        if _container is None:
            _container = Container()
        return _container


def reset_container(replacement: Container | None = None) -> None:
    global _container
    with _container_lock:
        _container = replacement
