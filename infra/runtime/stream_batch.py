"""The DynamoDB Streams side of a Lambda event source mapping, as pure functions.

`stream_event` turns GetRecords output into the event Lambda passes;
`retry_from` decides, from the handler's response, where the shard resumes
under ReportBatchItemFailures; `table_of` and `wants_latest_stream` read the
stream ARN a handler declares.
"""
from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Iterable

# What a declared stream ARN may end with to mean "whatever stream the table has now" (see docs/RUNTIME.md):
# a stream's label is the time it was enabled, which no decorator can know before the table exists.
LATEST_STREAM_LABELS = ("*", "latest")


def table_of(stream_arn: str) -> str:
    """`arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/stream/LABEL` -> NAME."""
    resource = stream_arn.split(":", 5)[-1]
    parts = resource.split("/")
    if len(parts) < 2 or parts[0] != "table":
        raise ValueError(f"not a DynamoDB stream ARN: {stream_arn!r}")
    return parts[1]


def wants_latest_stream(stream_arn: str) -> bool:
    return stream_arn.rsplit("/", 1)[-1] in LATEST_STREAM_LABELS


def region_of(arn: str) -> str:
    return arn.split(":")[3]


def stream_event(records: Iterable[dict], stream_arn: str) -> dict:
    return {"Records": [lambda_record(record, stream_arn) for record in records]}


def lambda_record(record: dict, stream_arn: str) -> dict:
    """One record as Lambda hands it over: boto3's GetRecords record made JSON again.

    boto3 parses `ApproximateCreationDateTime` into a datetime and binary
    attribute values into bytes; Lambda's JSON event carries epoch seconds and
    base64 strings.
    """
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = float(int(created.timestamp()))
    for image in ("Keys", "NewImage", "OldImage"):
        if image in change:
            change[image] = {name: _json_attribute(value) for name, value in change[image].items()}
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion") or region_of(stream_arn),
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    }


def _json_attribute(value: dict) -> dict:
    (kind, inner), = value.items()
    if kind == "B":
        return {"B": _base64(inner)}
    if kind == "BS":
        return {"BS": [_base64(item) for item in inner]}
    if kind == "M":
        return {"M": {name: _json_attribute(v) for name, v in inner.items()}}
    if kind == "L":
        return {"L": [_json_attribute(v) for v in inner]}
    return {kind: inner}


def _base64(data: bytes | str) -> str:
    return data if isinstance(data, str) else base64.b64encode(data).decode("ascii")


def sequence_of(record: dict) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


def retry_from(response: Any, sequence_numbers: list[str]) -> int | None:
    """Where the shard resumes after a handler returned `response` for a batch: None when the whole batch
    succeeded, else the position in the batch of the record to retry from.

    Lambda's rules for ReportBatchItemFailures on a stream: no response, an
    empty one, or an empty or null `batchItemFailures` is full success;
    otherwise the batch is retried from the lowest sequence number listed
    (the records before it are checkpointed); a malformed list, or an
    identifier that is empty, missing or not a sequence number of this batch,
    fails the whole batch (it is retried from its first record).
    """
    if not isinstance(response, dict) or response.get("batchItemFailures") is None:
        return None
    failures = response["batchItemFailures"]
    if not isinstance(failures, list):
        return 0
    if not failures:
        return None
    position = {sequence: index for index, sequence in enumerate(sequence_numbers)}
    lowest = len(sequence_numbers)
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in position:
            return 0
        lowest = min(lowest, position[identifier])
    return lowest
