"""The runtime's DynamoDB stream event source: Lambda's batching, ordering, retries and checkpoints.

The fixture app's `changes` handler reads its table's stream (batch size 5,
batching window 1 s, TRIM_HORIZON). Items steer it: `raise_until` makes it
raise until then, `fail_until` reports the record in batchItemFailures until
then, `sleep` makes it slow.
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from tests.runtime.runtime_harness import eventually

pytestmark = [pytest.mark.runtime, pytest.mark.streams]


def handled(runtime, tag: str, count: int, timeout: float = 20) -> list[list[str]]:
    """Wait until `count` distinct items of the tag were handed over; the batches that held them."""
    return eventually(
        lambda: (b := runtime.stream_batches(tag)) and len({i for batch in b for i in batch}) >= count and b,
        timeout, runtime.explain(f"{count} stream records of {tag} were not all handed over"))


def test_stream_records_reach_the_handler_in_lambdas_shape(runtime, tag):
    runtime.put_items({"id": f"{tag}-1", "word": "hello"})
    runtime.dynamodb.update_item(TableName=runtime.table, Key={"id": {"S": f"{tag}-1"}},
                                 UpdateExpression="SET word = :w", ExpressionAttributeValues={":w": {"S": "again"}})
    runtime.dynamodb.delete_item(TableName=runtime.table, Key={"id": {"S": f"{tag}-1"}})
    handled(runtime, tag, 1)
    records = eventually(
        lambda: len(r := [rec for inv in runtime.stream_invocations() for rec in inv["records"]
                          if rec["dynamodb"]["Keys"]["id"]["S"] == f"{tag}-1"]) >= 3 and r,
        20, runtime.explain("the insert, modify and remove were not all handed over"))
    stream_arn = runtime.dynamodb.describe_table(TableName=runtime.table)["Table"]["LatestStreamArn"]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    insert, modify, remove = records
    assert insert["eventSource"] == "aws:dynamodb" and insert["eventSourceARN"] == stream_arn
    assert insert["awsRegion"] == "us-east-1"
    assert insert["dynamodb"]["NewImage"]["word"] == {"S": "hello"}
    assert modify["dynamodb"]["OldImage"]["word"] == {"S": "hello"}
    assert modify["dynamodb"]["NewImage"]["word"] == {"S": "again"}
    assert "NewImage" not in remove["dynamodb"]
    assert isinstance(insert["dynamodb"]["ApproximateCreationDateTime"], float)
    # Epoch seconds, rounded down: to the second on AWS, to the minute by DynamoDB Local (LocalStack's v2 provider).
    assert abs(insert["dynamodb"]["ApproximateCreationDateTime"] - time.time()) < 120
    assert insert["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert int(insert["dynamodb"]["SequenceNumber"]) < int(modify["dynamodb"]["SequenceNumber"])
    [invocation] = [i for i in runtime.stream_invocations() if insert in i["records"]]
    assert invocation["function_name"] == "runtime-fixture-local-changes"


def test_batches_hold_at_most_batch_size_records_in_stream_order(runtime, tag):
    ids = [f"{tag}-{n:02d}" for n in range(12)]
    runtime.put_items(*({"id": i} for i in ids))
    batches = handled(runtime, tag, 12)
    assert all(len(batch) <= 5 for batch in batches), batches
    assert [i for batch in batches for i in batch] == ids  # each once, in the order written
    sequences = [int(r["dynamodb"]["SequenceNumber"]) for inv in runtime.stream_invocations()
                 for r in inv["records"]]
    assert sequences == sorted(sequences)  # one shard: every invocation continues where the last ended


def test_the_batching_window_gathers_records_written_apart_into_one_batch(runtime, tag):
    runtime.put_items({"id": f"{tag}-a"})
    time.sleep(0.4)
    runtime.put_items({"id": f"{tag}-b"})
    batches = handled(runtime, tag, 2)
    assert batches == [[f"{tag}-a", f"{tag}-b"]]


def test_a_handler_that_raises_gets_the_same_batch_again_until_it_succeeds(runtime, tag):
    runtime.put_items({"id": f"{tag}-1"}, {"id": f"{tag}-2", "raise_until": time.time() + 2}, {"id": f"{tag}-3"})
    time.sleep(3.5)
    runtime.put_items({"id": f"{tag}-4"})
    batches = handled(runtime, tag, 4)
    first = [f"{tag}-1", f"{tag}-2", f"{tag}-3"]
    assert len(batches) >= 3, batches  # raised at least once, then succeeded, then the later record
    assert all(batch == first for batch in batches[:-1]), batches  # retried whole, from the same record
    assert batches[-1] == [f"{tag}-4"]  # the later record waited behind the failing batch
    assert "failed" in runtime.log() and "retried" in runtime.log()


def test_report_batch_item_failures_resumes_from_the_lowest_failed_record(runtime, tag):
    # Failed on its first delivery, whenever that comes: a deadline could pass before a slow stream delivers it.
    runtime.put_items({"id": f"{tag}-1"}, {"id": f"{tag}-2", "fail_times": 1}, {"id": f"{tag}-3"})
    # One shard for every test of the session: these records may wait behind an earlier test's batch that is
    # still being retried with backoff (up to 5 s apart), which LocalStack's slower streams make longer.
    batches = eventually(lambda: len(b := runtime.stream_batches(tag)) >= 2 and
                         [f"{tag}-2", f"{tag}-3"] in b[1:] and b,
                         60, runtime.explain("the failed record was not retried"))
    assert batches[0] == [f"{tag}-1", f"{tag}-2", f"{tag}-3"]
    assert all(f"{tag}-1" not in batch for batch in batches[1:]), batches  # checkpointed, never again
    assert batches[-1] == [f"{tag}-2", f"{tag}-3"]


def test_the_checkpoint_survives_a_restart_records_written_meanwhile_arrive_once(launch_runtime, tag):
    first = launch_runtime(workers=1)
    first.put_items(*({"id": f"{tag}-{n}"} for n in range(3)))
    handled(first, tag, 3)
    assert first.stop() == 0
    first.put_items(*({"id": f"{tag}-{n}"} for n in range(3, 6)))  # while no reader runs

    second = launch_runtime(workers=1, prefix=first.queues.prefix)
    handled(second, tag, 3)
    time.sleep(1.5)  # anything else it would hand over has arrived by now
    assert [i for batch in second.stream_batches(tag) for i in batch] == [f"{tag}-{n}" for n in range(3, 6)]


def test_a_stream_reader_killed_mid_batch_hands_the_same_batch_to_its_replacement(launch_runtime, tag):
    runtime = launch_runtime(workers=1)
    [reader] = runtime.children("infra.runtime.streams")
    runtime.put_items({"id": f"{tag}-1"}, {"id": f"{tag}-2", "sleep": 5}, {"id": f"{tag}-3"})
    handled(runtime, tag, 3)
    os.kill(reader, signal.SIGKILL)  # while the handler sleeps on the batch
    runtime.put_items({"id": f"{tag}-4"})

    batches = eventually(lambda: len(b := runtime.stream_batches(tag)) >= 3 and b, 30,
                         runtime.explain("the replacement reader did not hand over the batch and the next record"))
    batch = [f"{tag}-1", f"{tag}-2", f"{tag}-3"]
    assert batches[:2] == [batch, batch]  # the same records again, no more, no fewer
    assert batches[2] == [f"{tag}-4"]
    assert len(runtime.records("finished")) >= 1
