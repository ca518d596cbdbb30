"""The local runtime's stream reader, against a fake DynamoDB Streams client: what it does when an iterator
expires or its records are trimmed (LocalStack's v2 provider and AWS both answer that way)."""
from __future__ import annotations

from types import SimpleNamespace

from botocore.exceptions import ClientError

from infra.runtime.streams import Shard, StreamReader


def record(sequence: int) -> dict:
    return {"eventID": str(sequence), "dynamodb": {"SequenceNumber": str(sequence)}}


class FakeStreams:
    """GetRecords raises `fail_with` once, then serves `records` after whatever sequence the iterator names."""

    def __init__(self, records: list[dict], fail_with: str):
        self.records, self.fail_with = records, fail_with
        self.iterators: list[dict] = []

    def get_shard_iterator(self, **kwargs):
        self.iterators.append(kwargs)
        after = int(kwargs.get("SequenceNumber", 0))
        return {"ShardIterator": str(after)}

    def get_records(self, ShardIterator: str, Limit: int):
        if self.fail_with:
            code, self.fail_with = self.fail_with, ""
            raise ClientError({"Error": {"Code": code, "Message": "gone"}}, "GetRecords")
        after = int(ShardIterator)
        found = [r for r in self.records if int(r["dynamodb"]["SequenceNumber"]) > after]
        return {"Records": found, "NextShardIterator": str(max([after] + [int(r["dynamodb"]["SequenceNumber"])
                                                                          for r in found]))}


def reader(streams: FakeStreams) -> StreamReader:
    built = StreamReader.__new__(StreamReader)
    built.streams, built.stream_arn = streams, "arn:aws:dynamodb:us-east-1:1:table/t/stream/x"
    built.source = SimpleNamespace(batch_size=100, starting_position="TRIM_HORIZON")
    return built


def test_a_trimmed_iterator_is_replaced_by_one_after_the_last_record_buffered_keeping_buffer_and_checkpoint():
    streams = FakeStreams([record(n) for n in range(1, 6)], fail_with="TrimmedDataAccessException")
    shard = Shard("shard-1", None, opened=True, iterator="2", buffer=[record(1), record(2)], done=None)
    stream_reader = reader(streams)
    assert stream_reader.fill(shard) is False  # the trimmed answer: nothing read
    assert [r["eventID"] for r in shard.buffer] == ["1", "2"] and shard.done is None  # nothing dropped or skipped
    assert stream_reader.fill(shard) is True
    assert streams.iterators == [{"StreamArn": stream_reader.stream_arn, "ShardId": "shard-1",
                                  "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": "2"}]
    assert [r["eventID"] for r in shard.buffer] == ["1", "2", "3", "4", "5"]  # each record once, in order


def test_an_expired_iterator_on_an_empty_buffer_reads_on_after_the_checkpoint():
    streams = FakeStreams([record(n) for n in range(1, 6)], fail_with="ExpiredIteratorException")
    shard = Shard("shard-1", None, opened=True, iterator="3", done="3")
    stream_reader = reader(streams)
    assert stream_reader.fill(shard) is False
    assert stream_reader.fill(shard) is True
    assert streams.iterators[0]["SequenceNumber"] == "3"
    assert [r["eventID"] for r in shard.buffer] == ["4", "5"] and shard.done == "3"


def test_a_trimmed_iterator_on_a_shard_never_read_starts_again_from_the_oldest_record():
    # LocalStack's v2 provider answers a TRIM_HORIZON iterator taken before the shard's first record this way.
    streams = FakeStreams([record(n) for n in range(1, 3)], fail_with="TrimmedDataAccessException")
    shard = Shard("shard-1", None, opened=True, iterator="0")
    stream_reader = reader(streams)
    assert stream_reader.fill(shard) is False and stream_reader.fill(shard) is True
    assert streams.iterators[0]["ShardIteratorType"] == "TRIM_HORIZON"
    assert [r["eventID"] for r in shard.buffer] == ["1", "2"]
