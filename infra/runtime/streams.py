"""A DynamoDB stream event source mapping, as its own process.

    python -m infra.runtime.streams --project-dir DIR --stage STAGE --source NAME [--checkpoint-table TABLE]

The reader follows every shard of the stream a `@app.on_dynamodb_record`
handler declares, through boto3's `dynamodbstreams` client, and hands the
handler Lambda-shaped batches: at most `batch_size` records, gathered for
`maximum_batching_window_in_seconds`, in order within a shard. A batch whose
handler raises is retried, the same records from the same sequence number,
until it succeeds (the shard waits: Lambda's default of retrying until the
records expire); ReportBatchItemFailures moves the checkpoint to just before
the lowest failed record. Each shard's checkpoint is an item in a DynamoDB
table, so a restarted reader goes on where the last one stopped; the batch
in flight is written down before the handler runs, so after a crash or a
`kill -9` the same batch, no more and no fewer records, is the first one
handed over again (docs/RUNTIME.md).
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from chalice.app import DynamoDBEventConfig

from infra.runtime.child import announce_ready, child_argument_parser, configure_logging, stop_requested_by_signals
from infra.runtime.invoke import FunctionTimedOut, end_sandbox_after_timeout, invoke
from infra.runtime.project import Project, load_project, resolve_handler
from infra.runtime.stream_batch import region_of, retry_from, sequence_of, stream_event, table_of, wants_latest_stream
from infra.signals import StopSignals

log = logging.getLogger("infra.runtime.streams")

POLL_INTERVAL_SECONDS = 0.25  # Lambda polls each shard about four times a second
SHARD_REFRESH_SECONDS = 5.0  # how often new shards (a split, a rollover) are looked for
GET_RECORDS_MAX = 1000  # DynamoDB Streams returns at most 1,000 records per GetRecords
FIRST_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 5.0
ERROR_PAUSE_SECONDS = 1.0
CHECKPOINT_PARTITION = "RUNTIME#stream"
# GetRecords errors after which a new iterator is asked for, from the last record read: an iterator lives
# 15 minutes, and one that points before the oldest record (DynamoDB Local's TRIM_HORIZON iterator taken on a
# shard that had no records yet does) is "trimmed"; AWS's advice for both is a new iterator.
REOPEN_ON = ("ExpiredIteratorException", "TrimmedDataAccessException")


def number(sequence: str) -> int:
    return int(sequence)


# ---- checkpoints --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    sequence_number: str | None = None  # the last record handled; None: none yet
    pending_last: str | None = None  # the last record of the batch handed over and not yet done


class Checkpoints(Protocol):
    def get(self, shard_id: str) -> Checkpoint: ...

    def begin(self, shard_id: str, done: str | None, pending_last: str) -> None: ...

    def commit(self, shard_id: str, done: str) -> None: ...


@dataclass
class MemoryCheckpoints(Checkpoints):
    """Without a checkpoint table: the reader's own memory, lost with the process (a warning says so)."""

    items: dict[str, Checkpoint] = field(default_factory=dict)

    def get(self, shard_id: str) -> Checkpoint:
        return self.items.get(shard_id, Checkpoint())

    def begin(self, shard_id: str, done: str | None, pending_last: str) -> None:
        self.items[shard_id] = Checkpoint(done, pending_last)

    def commit(self, shard_id: str, done: str) -> None:
        self.items[shard_id] = Checkpoint(done)


class DynamoCheckpoints(Checkpoints):
    """One item per shard: `pk = RUNTIME#stream#<function>#<stream arn>`, `sk = <shard id>`.

    Only one reader runs per source, so plain puts do; the stream ARN is in
    the key because a table's stream, once disabled and enabled again, is a
    new stream whose shard ids may repeat (moto gives every shard one id).
    """

    def __init__(self, dynamodb: Any, table: str, function_name: str, stream_arn: str):
        self.dynamodb = dynamodb
        self.table = table
        self.partition = f"{CHECKPOINT_PARTITION}#{function_name}#{stream_arn}"

    def get(self, shard_id: str) -> Checkpoint:
        item = self.dynamodb.get_item(TableName=self.table, Key=self._key(shard_id), ConsistentRead=True).get("Item")
        if not item:
            return Checkpoint()
        return Checkpoint(item.get("sequence_number", {}).get("S"), item.get("pending_last", {}).get("S"))

    def begin(self, shard_id: str, done: str | None, pending_last: str) -> None:
        item = {**self._key(shard_id), "pending_last": {"S": pending_last}, "updated_at": {"N": str(time.time())}}
        if done is not None:
            item["sequence_number"] = {"S": done}
        self.dynamodb.put_item(TableName=self.table, Item=item)

    def commit(self, shard_id: str, done: str) -> None:
        self.dynamodb.put_item(TableName=self.table, Item={
            **self._key(shard_id), "sequence_number": {"S": done}, "updated_at": {"N": str(time.time())}})

    def _key(self, shard_id: str) -> dict:
        return {"pk": {"S": self.partition}, "sk": {"S": shard_id}}


# ---- shards -------------------------------------------------------------------------------------


@dataclass
class Shard:
    shard_id: str
    parent_id: str | None
    at_startup: bool = False  # found when the reader started: the source's starting position applies
    iterator: str | None = None
    opened: bool = False  # an iterator was asked for
    closed: bool = False  # GetRecords said there will be no more (NextShardIterator absent)
    buffer: list[dict] = field(default_factory=list)  # read, not yet handled, in order
    first_buffered_at: float | None = None
    done: str | None = None  # the checkpoint: the last record handled
    read_after: str | None = None  # the last record read into the buffer, when a new iterator must follow it
    replay_until: int | None = None  # after a restart: the batch in flight then ends here
    retry_batch: list[dict] | None = None  # a batch whose handler raised: handed over again, unchanged
    retries: int = 0
    not_before: float = 0.0  # a retry waits until then

    @property
    def finished(self) -> bool:
        return self.closed and not self.buffer and self.retry_batch is None


class StreamReader:
    def __init__(self, project: Project, source: DynamoDBEventConfig, streams: Any, dynamodb: Any,
                 checkpoints_table: str | None, stop: StopSignals, timeout_seconds: float):
        self.project = project
        self.source = source
        self.streams = streams
        self.stop = stop
        self.timeout_seconds = timeout_seconds
        self.handler = resolve_handler(source.handler_string)
        self.stream_arn = resolve_stream_arn(dynamodb, source.stream_arn)
        self.function_name = project.function_name(source.name)
        self.checkpoints: Checkpoints = (
            DynamoCheckpoints(dynamodb, checkpoints_table, self.function_name, self.stream_arn)
            if checkpoints_table else MemoryCheckpoints())
        self.shards: dict[str, Shard] = {}
        self.finished: set[str] = set()
        self.first_refresh = True
        self.next_refresh = 0.0

    # -- the loop --

    def run(self) -> None:
        while not self.stop.is_set():
            if time.monotonic() >= self.next_refresh:
                self.refresh_shards()
            busy = False
            for shard in list(self.shards.values()):
                if self.stop.is_set():
                    break
                if not self._readable(shard):
                    continue
                busy |= self.step(shard)
                if shard.finished:
                    log.info("shard %s ended", shard.shard_id)
                    self.finished.add(shard.shard_id)
                    del self.shards[shard.shard_id]
                    self.next_refresh = 0.0  # its children may be waiting
            if not busy:
                self.stop.wait(POLL_INTERVAL_SECONDS)

    def _readable(self, shard: Shard) -> bool:
        """Per-shard order across a split: a child is read only once its parent has been read to its end."""
        return shard.parent_id is None or shard.parent_id not in self.shards

    def refresh_shards(self) -> None:
        self.next_refresh = time.monotonic() + SHARD_REFRESH_SECONDS
        try:
            described = self._describe_shards()
        except (BotoCoreError, ClientError) as exc:
            log.warning("could not describe %s: %s", self.stream_arn, exc)
            return
        for shard in described:
            shard_id = shard["ShardId"]
            if shard_id in self.shards or shard_id in self.finished:
                continue
            self.shards[shard_id] = self._open(shard_id, shard.get("ParentShardId"), self.first_refresh)
        self.first_refresh = False

    def _describe_shards(self) -> list[dict]:
        shards: list[dict] = []
        start: str | None = None
        while True:
            kwargs = {"StreamArn": self.stream_arn, **({"ExclusiveStartShardId": start} if start else {})}
            description = self.streams.describe_stream(**kwargs)["StreamDescription"]
            shards += description.get("Shards", [])
            start = description.get("LastEvaluatedShardId")
            if not start:
                return shards

    def _open(self, shard_id: str, parent_id: str | None, at_startup: bool) -> Shard:
        checkpoint = self.checkpoints.get(shard_id)
        shard = Shard(shard_id, parent_id, at_startup=at_startup, done=checkpoint.sequence_number,
                      replay_until=number(checkpoint.pending_last) if checkpoint.pending_last else None)
        if shard.replay_until is not None:
            log.info("shard %s: replaying the batch in flight before the restart (up to %s)",
                     shard_id, checkpoint.pending_last)
        return shard

    def _iterator(self, shard: Shard) -> str | None:
        after = shard.read_after or shard.done
        if after is not None:
            try:
                return self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard.shard_id, ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                    SequenceNumber=after)["ShardIterator"]
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TrimmedDataAccessException":
                    raise
                log.warning("shard %s: records after the checkpoint %s have expired; reading from the oldest",
                            shard.shard_id, shard.done)
        # A mapping's starting position applies to the shards it finds when it starts; shards that appear
        # later (a split, a rollover) are read from their beginning, as Lambda does.
        kind = self.source.starting_position if shard.at_startup else "TRIM_HORIZON"
        return self.streams.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard.shard_id,
                                               ShardIteratorType=kind)["ShardIterator"]

    def step(self, shard: Shard) -> bool:
        """Read what the shard has and hand over a batch if one is due. True if anything happened."""
        now = time.monotonic()
        if now < shard.not_before:
            return False
        if shard.retry_batch is not None:
            self.handle(shard, shard.retry_batch)
            return True
        read = self.fill(shard)
        batch = self.due_batch(shard, time.monotonic())
        if batch:
            self.handle(shard, batch)
            return True
        return read

    def fill(self, shard: Shard) -> bool:
        if shard.closed or len(shard.buffer) >= self.source.batch_size:
            return False
        try:
            if not shard.opened:
                shard.iterator = self._iterator(shard)
                shard.opened = True
            if shard.iterator is None:
                shard.closed = True
                return False
            response = self.streams.get_records(ShardIterator=shard.iterator, Limit=GET_RECORDS_MAX)
        except (BotoCoreError, ClientError) as exc:
            code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else ""
            if code in REOPEN_ON:
                shard.opened = False  # ask again after the last record read; the buffer and checkpoint stay
                shard.read_after = sequence_of(shard.buffer[-1]) if shard.buffer else None
            else:
                log.warning("reading shard %s failed: %s", shard.shard_id, exc)
                shard.not_before = time.monotonic() + ERROR_PAUSE_SECONDS
            return False
        records = response.get("Records", [])
        shard.iterator = response.get("NextShardIterator")
        if shard.iterator is None:
            shard.closed = True
        if records:
            if not shard.buffer:
                shard.first_buffered_at = time.monotonic()
            shard.buffer += records
        return bool(records)

    def due_batch(self, shard: Shard, now: float) -> list[dict]:
        if not shard.buffer:
            return []
        if shard.replay_until is not None:
            # The batch in flight when the last reader stopped: exactly those records again, so a handler that
            # derives what it writes from the batch (its first and last sequence numbers) writes the same.
            replay = [r for r in shard.buffer if number(sequence_of(r)) <= shard.replay_until]
            if number(sequence_of(shard.buffer[-1])) >= shard.replay_until or shard.closed:
                shard.replay_until = None
                return replay
            return []
        size = self.source.batch_size
        window = self.source.maximum_batching_window_in_seconds or 0
        if len(shard.buffer) >= size or shard.closed or window <= 0:
            return shard.buffer[:size]
        if shard.first_buffered_at is not None and now - shard.first_buffered_at >= window:
            return shard.buffer[:size]
        return []

    def handle(self, shard: Shard, batch: list[dict]) -> None:
        sequences = [sequence_of(record) for record in batch]
        self.checkpoints.begin(shard.shard_id, shard.done, sequences[-1])
        context = self.project.lambda_context(self.source.name, self.timeout_seconds, region_of(self.stream_arn))
        invocation = invoke(self.handler, stream_event(batch, self.stream_arn), context, self.timeout_seconds)
        if invocation.timed_out:
            log.error("%s timed out after %ss (request %s); the batch of %d record(s) is handed over again "
                      "by the next reader", context.function_name, self.timeout_seconds, context.aws_request_id,
                      len(batch))
            raise FunctionTimedOut(context.function_name)
        if invocation.error:
            self._retry_later(shard, batch)
            log.error("%s failed (request %s); its %d record(s) from %s are retried in %.1fs\n%s",
                      context.function_name, context.aws_request_id, len(batch), sequences[0],
                      shard.not_before - time.monotonic(), invocation.error.rstrip())
            return
        position = retry_from(invocation.value, sequences)
        if position is None:
            self._done(shard, batch, len(batch))
            return
        log.info("%s reported a failure at %s; %d of %d record(s) are done", context.function_name,
                 sequences[position], position, len(batch))
        if position > 0:
            self._done(shard, batch, position)
        shard.retry_batch = None  # the next batch starts at the failed record, read afresh
        shard.retries += 1
        shard.not_before = time.monotonic() + retry_delay(shard.retries)
        shard.first_buffered_at = time.monotonic()

    def _retry_later(self, shard: Shard, batch: list[dict]) -> None:
        shard.retry_batch = batch
        shard.retries += 1
        shard.not_before = time.monotonic() + retry_delay(shard.retries)

    def _done(self, shard: Shard, batch: list[dict], count: int) -> None:
        last = sequence_of(batch[count - 1])
        self.checkpoints.commit(shard.shard_id, last)
        shard.done = last
        shard.buffer = [r for r in shard.buffer if number(sequence_of(r)) > number(last)]
        shard.first_buffered_at = time.monotonic() if shard.buffer else None
        if shard.retry_batch is not None:
            shard.retry_batch = None
        shard.retries = 0


def retry_delay(retries: int) -> float:
    return min(MAX_RETRY_DELAY, FIRST_RETRY_DELAY * 2 ** max(0, retries - 1))


def resolve_stream_arn(dynamodb: Any, declared: str) -> str:
    """The stream to read: the declared ARN, or, for one ending in `/stream/*` (or `/stream/latest`), the
    table's current stream (LatestStreamArn). Raises LookupError when the table has no stream."""
    if not wants_latest_stream(declared):
        return declared
    table = table_of(declared)
    description = dynamodb.describe_table(TableName=table)["Table"]
    arn = description.get("LatestStreamArn")
    if not arn or not description.get("StreamSpecification", {}).get("StreamEnabled", False):
        raise LookupError(f"table {table} has no stream enabled")
    return str(arn)


def main(argv: list[str] | None = None) -> None:
    parser = child_argument_parser(__doc__)
    parser.add_argument("--source", required=True, help="the name of an @app.on_dynamodb_record event source")
    parser.add_argument("--checkpoint-table", default=None,
                        help="a DynamoDB table (pk, sk) for the shards' checkpoints; without it they live in memory")
    args = parser.parse_args(argv)
    configure_logging()
    stop = stop_requested_by_signals()
    project = load_project(args.project_dir, args.stage, function_name=args.source)
    if stop.is_set():
        return
    source = project.dynamodb_source(args.source)
    timeout = project.function_timeout(source.name, args.function_timeout)
    try:
        reader = StreamReader(project, source, boto3.client("dynamodbstreams"), boto3.client("dynamodb"),
                              args.checkpoint_table, stop, timeout)
    except (ClientError, LookupError) as exc:
        # Usually a table not provisioned yet; the supervisor retries with backoff.
        log.error("cannot read the stream %s: %s", source.stream_arn, exc)
        sys.exit(1)
    if not args.checkpoint_table:
        log.warning("no --checkpoint-table: checkpoints live in memory, and a restart starts at %s",
                    source.starting_position)
    log.info("reading %s for %s (batch size %d, window %ss, from %s, timeout %ss)", reader.stream_arn,
             reader.function_name, source.batch_size, source.maximum_batching_window_in_seconds,
             source.starting_position, timeout)
    reader.refresh_shards()
    announce_ready()
    try:
        reader.run()
    except FunctionTimedOut:
        end_sandbox_after_timeout()
    log.info("stopped (%s)", stop.reason)


if __name__ == "__main__":
    main(sys.argv[1:])
