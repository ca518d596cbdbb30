"""Lambda's rules for SQS events and ReportBatchItemFailures responses, without any process."""
from __future__ import annotations

import time

import pytest

from infra.runtime.invoke import invoke
from infra.runtime.sqs_batch import failed_message_ids, lambda_record

pytestmark = pytest.mark.runtime

IDS = ["id-1", "id-2", "id-3"]


@pytest.mark.parametrize(
    "response",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}, "done", {"statusCode": 200}],
)
def test_a_response_without_failures_deletes_the_whole_batch(response):
    assert failed_message_ids(response, IDS) == set()


def test_listed_item_identifiers_are_the_only_messages_kept():
    response = {"batchItemFailures": [{"itemIdentifier": "id-2"}, {"itemIdentifier": "id-3"}]}
    assert failed_message_ids(response, IDS) == {"id-2", "id-3"}


@pytest.mark.parametrize(
    "failures",
    [
        [{"itemIdentifier": "id-1"}, {"itemIdentifier": "not-in-batch"}],
        [{"itemIdentifier": ""}],
        [{"itemIdentifier": None}],
        [{"messageId": "id-1"}],  # a bad key name
        ["id-1"],
        "id-1",
    ],
)
def test_a_malformed_or_unknown_failure_fails_the_whole_batch(failures):
    assert failed_message_ids({"batchItemFailures": failures}, IDS) == set(IDS)


def test_a_lambda_record_renames_fields_and_base64_encodes_binary_attributes():
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "rh-1",
        "MD5OfBody": "abc",
        "Body": "hello",
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1700000000000"},
        "MessageAttributes": {
            "kind": {"DataType": "String", "StringValue": "job"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    }

    record = lambda_record(message, "arn:aws:sqs:eu-west-1:123456789012:jobs")

    assert record == {
        "messageId": "m-1",
        "receiptHandle": "rh-1",
        "body": "hello",
        "attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1700000000000"},
        "messageAttributes": {
            "kind": {"stringValue": "job", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
            "blob": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
        },
        "md5OfBody": "abc",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:jobs",
        "awsRegion": "eu-west-1",
    }


class Context:
    aws_request_id = "request-1"


def test_an_invocation_reports_a_raise_a_non_json_result_and_a_timeout_apart():
    def raises(event, context):
        raise ValueError("boom")

    def returns_a_set(event, context):
        return {"a set is not JSON"}

    def sleeps(event, context):
        time.sleep(2)

    assert "ValueError: boom" in invoke(raises, {}, Context(), 1).error
    assert "TypeError" in invoke(returns_a_set, {}, Context(), 1).error
    assert invoke(sleeps, {}, Context(), 0.1).timed_out
    assert invoke(lambda event, context: {"ok": event["n"]}, {"n": 1}, Context(), 1).value == {"ok": 1}
