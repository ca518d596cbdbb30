"""The SQS side of a Lambda event source mapping, as pure functions.

`sqs_event` turns ReceiveMessage output into the event Lambda passes;
`failed_message_ids` decides, from the handler's response, which messages
stay on the queue under ReportBatchItemFailures.
"""
from __future__ import annotations

import base64
from typing import Any, Iterable


def sqs_event(messages: Iterable[dict], queue_arn: str) -> dict:
    return {"Records": [lambda_record(message, queue_arn) for message in messages]}


def lambda_record(message: dict, queue_arn: str) -> dict:
    """One record as Lambda builds it from a message that ReceiveMessage returned."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        # Lambda passes every system attribute it received (FIFO ones included)
        # under their SQS names.
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _lambda_message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region_of(queue_arn),
    }


def region_of(arn: str) -> str:
    return arn.split(":")[3]


def _lambda_message_attribute(value: dict) -> dict:
    # boto3 hands binary values over as bytes; Lambda's JSON event carries base64.
    attribute = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = _base64(value["BinaryValue"])
    return attribute


def _base64(data: bytes | str) -> str:
    if isinstance(data, str):  # already encoded by a client that skipped decoding
        return data
    return base64.b64encode(data).decode("ascii")


def failed_message_ids(response: Any, message_ids: list[str]) -> set[str]:
    """The messages that must stay on the queue after a handler returned `response`.

    Lambda's rules for ReportBatchItemFailures: no response, an empty one, or
    an empty or null `batchItemFailures` is full success; listed identifiers
    are the failures; and a malformed list, or an identifier that is empty,
    missing or not a messageId of this batch, fails the whole batch.
    """
    if not isinstance(response, dict) or response.get("batchItemFailures") is None:
        return set()
    failures = response["batchItemFailures"]
    if not isinstance(failures, list):
        return set(message_ids)
    known = set(message_ids)
    failed = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in known:
            return set(message_ids)
        failed.add(identifier)
    return failed
