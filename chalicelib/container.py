"""The one composition root: every client, adapter and service, built once on first use.

Nothing here runs at import time: `container()` builds settings, boto3
clients and adapters on first use, and `reset_container()` lets tests start
over. Where AWS is comes from boto3's own configuration (`AWS_ENDPOINT_URL`,
`AWS_DEFAULT_REGION`, credentials), so no code path knows whether it talks to
moto, LocalStack or AWS.
"""
from __future__ import annotations

import functools
import os
import secrets
import socket
import threading
from functools import cached_property
from typing import Any, Callable, Hashable

from chalicelib.admission.dispatcher import Dispatcher
from chalicelib.admission.service import Admission
from chalicelib.aws.clients import DynamoDBClient, SQSClient
from chalicelib.bots import service as bots
from chalicelib.bots.store import BotStore
from chalicelib.clock import Clock
from chalicelib.compute.models import ComputeBacklogItem
from chalicelib.compute.service import compute_job_spec
from chalicelib.compute.store import ComputeStore
from chalicelib.datalake.store import Catalog, ObjectStore
from chalicelib.core.queue import MessageQueue
from chalicelib.core.read_cache import ReadCache
from chalicelib.dlq.store import DeadLetterQueue, FailureLog
from chalicelib.fleet.service import Heartbeat
from chalicelib.fleet.store import FleetStore
from chalicelib.resources import JOBS_QUEUE
from chalicelib.runs.pacing import Pacer
from chalicelib.runs.store import RunStore
from chalicelib.settings import Settings
from chalicelib.typed.attempts import TypedJobAttempts
from chalicelib.typed.executors import REGISTRY, Registry
from chalicelib.typed.keys import typed_job_spec, typed_limit_keys
from chalicelib.typed.models import TypedBacklogItem
from chalicelib.typed.store import TypedJobStore
from chalicelib.worker.ledger import ResultLedger
from chalicelib.worker.retry import RetryPolicy, with_injected_failures
from chalicelib.worker.runner import NumberRunner
from chalicelib.worker.worker import JobWorker


def new_token() -> str:
    return secrets.token_hex(8)


def dynamo_ledger(client: DynamoDBClient, results_table: str, state_table: str, typed_jobs_table: str) -> ResultLedger:
    """The result ledger with every origin's settlement."""
    from chalicelib.compute.dynamo import ComputeSettlement
    from chalicelib.runs.dynamo import RunSettlement
    from chalicelib.typed.dynamo import TypedJobSettlement
    from chalicelib.worker.dynamo import DynamoResultLedger
    return DynamoResultLedger(client, results_table, {
        "run": RunSettlement(state_table), "compute": ComputeSettlement(state_table),
        "typed": TypedJobSettlement(state_table, typed_jobs_table)})


def dynamo_bot_ledger(client: DynamoDBClient, results_table: str, state_table: str,
                      typed_jobs_table: str) -> ResultLedger:
    """The result ledger as bots settle through it: the same results table and condition, with the bots'
    settlement of typed jobs (which also lets the bot's hold go)."""
    from chalicelib.bots.dynamo import BotJobSettlement
    from chalicelib.worker.dynamo import DynamoResultLedger
    return DynamoResultLedger(client, results_table, {"typed": BotJobSettlement(state_table, typed_jobs_table)})


class Container:
    """Builds each client, adapter and service once, on first use. The unit tests' container (tests/fakes.py)
    replaces the adapters with their in-memory twins and keeps everything else."""

    def __init__(self, settings: Settings | None = None):
        self._settings = settings

    @cached_property
    def settings(self) -> Settings:
        return self._settings or Settings()

    # ---- AWS clients ----

    @cached_property
    def session(self) -> Any:
        import boto3
        session = boto3.session.Session()
        if self.settings.aws_call_log:  # the benchmarks count every AWS call (aws/metering.py)
            from chalicelib.aws.metering import CallMeter
            CallMeter(self.settings.aws_call_log).attach(session)
        return session

    def _client(self, service: str) -> Any:
        from botocore.config import Config
        # chalice local serves many threads; give them a pool to share.
        return self.session.client(service, config=Config(max_pool_connections=64, retries={"mode": "standard"}))

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        return self._client("dynamodb")

    @cached_property
    def sqs(self) -> SQSClient:
        return self._client("sqs")

    # ---- adapters (tests/fakes.py swaps these for the in-memory twins) ----

    def _queue(self, name: str) -> MessageQueue:
        from chalicelib.aws.sqs import DuplicatingQueue, SqsQueue
        queue = SqsQueue(self.sqs, name)
        return DuplicatingQueue(queue) if self.settings.drill_duplicate_sends else queue

    @cached_property
    def jobs_queue(self) -> Any:  # MessageQueue, and the DLQ's redrive target
        return self._queue(self.settings.jobs_queue)

    @cached_property
    def ticks_queue(self) -> MessageQueue:
        return self._queue(self.settings.ticks_queue)

    @cached_property
    def jobs_dlq(self) -> DeadLetterQueue:
        from chalicelib.aws.sqs import SqsQueue
        return SqsQueue(self.sqs, self.settings.jobs_dlq)

    @cached_property
    def runs(self) -> RunStore:
        from chalicelib.runs.dynamo import DynamoRunStore
        return DynamoRunStore(self.dynamodb, self.settings.state_table)

    @cached_property
    def compute(self) -> ComputeStore:
        from chalicelib.compute.dynamo import DynamoComputeStore
        return DynamoComputeStore(self.dynamodb, self.settings.state_table)

    @cached_property
    def typed_jobs(self) -> TypedJobStore:
        from chalicelib.typed.dynamo import DynamoTypedJobStore
        return DynamoTypedJobStore(self.dynamodb, self.settings.typed_jobs_table, self.settings.state_table,
                                   self.settings.results_table)

    @cached_property
    def ledger(self) -> ResultLedger:
        settings = self.settings
        return dynamo_ledger(self.dynamodb, settings.results_table, settings.state_table, settings.typed_jobs_table)

    @cached_property
    def bots(self) -> BotStore:
        from chalicelib.bots.dynamo import DynamoBotStore
        return DynamoBotStore(self.dynamodb, self.settings.typed_jobs_table, self.settings.state_table)

    @cached_property
    def bot_ledger(self) -> ResultLedger:
        settings = self.settings
        return dynamo_bot_ledger(self.dynamodb, settings.results_table, settings.state_table,
                                 settings.typed_jobs_table)

    @cached_property
    def fleet(self) -> FleetStore:
        from chalicelib.fleet.dynamo import DynamoFleetStore
        return DynamoFleetStore(self.dynamodb, self.settings.state_table)

    @cached_property
    def failure_log(self) -> FailureLog:
        from chalicelib.dlq.dynamo import DynamoFailureLog
        return DynamoFailureLog(self.dynamodb, self.settings.state_table)

    # ---- services ----

    @cached_property
    def registry(self) -> Registry:
        return REGISTRY

    @cached_property
    def pacer(self) -> Pacer:
        return Pacer(runs=self.runs, jobs=self.jobs_queue, ticks=self.ticks_queue, pace=self.settings.pace,
                     new_token=new_token)

    @cached_property
    def compute_dispatcher(self) -> Dispatcher[ComputeBacklogItem]:
        return Dispatcher(store=self.compute, jobs=self.jobs_queue, origin="compute", job_spec=compute_job_spec,
                          max_in_flight=self.settings.compute_max_in_flight,
                          jobs_per_message=self.settings.compute_jobs_per_message)

    @cached_property
    def typed_dispatcher(self) -> Dispatcher[TypedBacklogItem]:
        """Typed jobs' admission: each caller's backlog is highest priority first; it admits nothing while paused
        (Lease.paused); a job keeps to its type's and its caller's rate limits. Scheduled jobs that fell due reach
        the backlogs through their wake-ups (typed.service.promote_due)."""
        return Dispatcher(store=self.typed_jobs, jobs=self.jobs_queue, origin="typed", job_spec=typed_job_spec,
                          max_in_flight=self.settings.typed_max_in_flight,
                          jobs_per_message=self.settings.typed_jobs_per_message, limited_by=typed_limit_keys,
                          ticks=self.ticks_queue)

    @cached_property
    def admission(self) -> Admission:
        return Admission({"compute": self.compute_dispatcher, "typed": self.typed_dispatcher}, ticks=self.ticks_queue,
                         ask_every_s=self.settings.admission_ask_every_s)

    @cached_property
    def clock(self) -> Clock:
        return Clock(pacer=self.pacer, admission=self.admission, typed_jobs=self.typed_jobs, ticks=self.ticks_queue,
                     bot_leases=lambda now: bots.reclaim_expired(self.bots, self.bot_ledger, now))

    @cached_property
    def worker_id(self) -> str:
        # On Lambda, one id per execution environment; locally, per worker process.
        return f"{socket.gethostname()}:{os.getpid()}"

    @cached_property
    def heartbeat(self) -> Heartbeat:
        return Heartbeat(self.fleet, self.worker_id, self.settings.heartbeat_s)

    @cached_property
    def typed_attempts(self) -> TypedJobAttempts:
        return TypedJobAttempts(store=self.typed_jobs, registry=self.registry,
                                latency_s=self.settings.executor_latency_s)

    @cached_property
    def retry_policy(self) -> RetryPolicy:
        """The one retry policy: the Lambda workers' and the bots' retries back off alike."""
        settings = self.settings
        return RetryPolicy(settings.max_attempts, settings.retry_base_s, settings.retry_max_s)

    @cached_property
    def worker(self) -> JobWorker:
        from chalicelib.compute.factoring import prime_factors_within
        settings = self.settings
        budget = settings.compute_budget_s
        factor: Callable[[int], list[int]] = with_injected_failures(
            lambda number: prime_factors_within(number, budget), settings.failure_rate)
        numbers = NumberRunner(factor)
        return JobWorker(ledger=self.ledger, retries=self.jobs_queue,
                         policy=self.retry_policy,
                         runners={"run": numbers, "compute": numbers, "typed": self.typed_attempts},
                         worker_id=self.worker_id, failures=self.failure_log, heartbeat=self.heartbeat,
                         settled=self.admission.after_settled, batch_done=self.admission.after_batch,
                         max_receives=JOBS_QUEUE.max_receive_count)

    # ---- the datalake (chalicelib/datalake/) ----

    @cached_property
    def s3(self) -> Any:
        return self._client("s3")

    @cached_property
    def datalake_objects(self) -> ObjectStore:
        from chalicelib.datalake.s3 import S3ObjectStore
        return S3ObjectStore(self.s3, self.settings.datalake_bucket)

    @cached_property
    def datalake_catalog(self) -> Catalog:
        from chalicelib.datalake.dynamo import DynamoCatalog
        return DynamoCatalog(self.dynamodb, self.settings.state_table)

    @cached_property
    def read_cache(self) -> ReadCache[Hashable, dict[str, Any]]:
        """The answers many pollers share: the run's status, pages of typed jobs (app.py)."""
        return ReadCache(self.settings.read_cache_s)

    def health(self) -> dict[str, dict[str, Any]]:
        """Check that the jobs queue and every table answer. Used by GET /api/health."""
        settings = self.settings
        probes: dict[str, Callable[[], Any]] = {"jobs_queue": lambda: self.jobs_queue.depth()}
        for check, table in (("state_table", settings.state_table), ("results_table", settings.results_table),
                             ("typed_jobs_table", settings.typed_jobs_table)):
            probes[check] = functools.partial(self._table_status, table)
        checks = {}
        for check, probe in probes.items():
            try:
                checks[check] = {"ok": True, "detail": probe()}
            except Exception as exc:  # health reports every failure, whatever it is
                checks[check] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
        return checks

    def _table_status(self, table: str) -> str:
        return str(self.dynamodb.describe_table(TableName=table)["Table"]["TableStatus"])


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
