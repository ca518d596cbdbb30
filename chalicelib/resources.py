"""Every AWS resource Pacer uses (tables, queues, buckets), declared once.

Provisioning (`infra/provision.py`) creates these idempotently, the app's
decorators take their queue names from here, and the deploy template is meant
to be generated from the same declaration. Lambda ships this module, so it
holds plain data only: no boto3, no settings.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Index:
    name: str
    hash_key: str
    range_key: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    hash_key: str
    range_key: str | None = None
    ttl_attribute: str | None = None
    indexes: tuple[Index, ...] = ()
    stream_view: str | None = None  # a DynamoDB stream of the table's changes: NEW_IMAGE, NEW_AND_OLD_IMAGES, …

    @property
    def stream_arn(self) -> str:
        """The ARN a `@app.on_dynamodb_record` handler declares for this table's stream.

        A stream's real ARN ends in a label (the time it was enabled) that no decorator can know before the
        table exists, so the declared one ends in `/stream/*`: the local runtime reads the table's current
        stream, and the deploy template replaces it with the table's `StreamArn` (infra/deploy/template.py).
        """
        return f"arn:aws:dynamodb:*:*:table/{self.name}/stream/*"

    @property
    def attributes(self) -> dict[str, str]:
        """Every key attribute the table or its indexes use (all strings)."""
        names = [self.hash_key, self.range_key]
        for index in self.indexes:
            names += [index.hash_key, index.range_key]
        return {name: "S" for name in names if name}


@dataclass(frozen=True)
class Queue:
    name: str
    visibility_timeout: int
    max_receive_count: int | None = None
    dead_letter: "Queue | None" = None
    retention_seconds: int = 4 * 24 * 3600
    attributes: dict[str, str] = field(default_factory=dict)


# One table for coordination state: runs, the current-run pointer, the pacing
# outbox and per-second throughput buckets (see docs/ARCHITECTURE.md).
STATE_TABLE = Table(name="pacer-state", hash_key="pk", range_key="sk", ttl_attribute="expires_at")

# One result item per job, keyed by job id. `processed` counts these. Its stream feeds the datalake: each new
# result item's INSERT is read by `results_to_datalake` (chalicelib/datalake/).
RESULTS_TABLE = Table(name="pacer-results", hash_key="job_id", stream_view="NEW_IMAGE")

JOBS_DLQ = Queue(name="pacer-jobs-dlq", visibility_timeout=60, retention_seconds=14 * 24 * 3600)
# Lambda's guidance: visibility timeout at least 6x the function timeout (30 s).
JOBS_QUEUE = Queue(name="pacer-jobs", visibility_timeout=180, max_receive_count=5, dead_letter=JOBS_DLQ)

TICKS_DLQ = Queue(name="pacer-ticks-dlq", visibility_timeout=60, retention_seconds=14 * 24 * 3600)
# Ticks are the scheduler's fine clock. A tick that crashed is retried quickly.
TICKS_QUEUE = Queue(name="pacer-ticks", visibility_timeout=10, max_receive_count=5, dead_letter=TICKS_DLQ)

# Typed jobs: one item per job, keyed by id. Listing reads a GSI, never a scan: the index's partition is
# the status filter, the type filter or one constant for "all", and its sort key orders by created time or
# by priority (see chalicelib/typed/listing.py and docs/ARCHITECTURE.md "Typed jobs").
TYPED_JOB_INDEX_PARTITIONS = {"status": "status", "type": "type", "all": "kind"}  # filter -> the item attribute
TYPED_JOB_INDEX_SORTS = {"created": "created_key", "priority": "priority_key"}  # sort -> the item attribute


def typed_job_index_name(partition: str, sort: str) -> str:
    return f"by-{partition}-{sort}"


TYPED_JOBS_TABLE = Table(
    # Named before "typed job" was the word: renaming a deployed table replaces it, and loses its jobs.
    name="pacer-tasks",
    hash_key="id",
    indexes=tuple(
        Index(typed_job_index_name(partition, sort), hash_key=hash_attribute, range_key=range_attribute)
        for partition, hash_attribute in TYPED_JOB_INDEX_PARTITIONS.items()
        for sort, range_attribute in TYPED_JOB_INDEX_SORTS.items()
    ),
)

@dataclass(frozen=True)
class Bucket:
    name: str  # locally and on LocalStack; on AWS, where names are global, suffixed with account and region


# The datalake: every job result once, as NDJSON objects under results/date=YYYY-MM-DD/ (chalicelib/datalake/).
DATALAKE_BUCKET = Bucket(name="pacer-datalake")

TABLES: tuple[Table, ...] = (STATE_TABLE, RESULTS_TABLE, TYPED_JOBS_TABLE)
BUCKETS: tuple[Bucket, ...] = (DATALAKE_BUCKET,)
# Dead-letter queues first: a queue's redrive policy names its DLQ's ARN.
QUEUES: tuple[Queue, ...] = (JOBS_DLQ, JOBS_QUEUE, TICKS_DLQ, TICKS_QUEUE)
