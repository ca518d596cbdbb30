"""Ask moto and LocalStack the same questions and print where they answer differently.

    python -m infra.localstack.compare_emulators [--localstack http://127.0.0.1:4566]

It starts a moto server of its own; LocalStack must already be running
(`infra/localstack/hostmode.sh start`). Each check names what AWS documents,
so a difference says which emulator strays. docs/EMULATORS.md records the
answers; re-run this after upgrading either emulator.
"""
from __future__ import annotations

import argparse
import json
import time
import uuid
from dataclasses import dataclass
from typing import Callable

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from infra.emulator import start_emulator


@dataclass
class Check:
    name: str
    aws: str  # what AWS documents
    probe: Callable[[object, object], str]


def error_code(call: Callable[[], object]) -> str:
    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    return "accepted"


def _queue(sqs, **attributes) -> str:
    name = f"cmp-{uuid.uuid4().hex[:8]}" + (".fifo" if attributes.get("FifoQueue") == "true" else "")
    return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def _table(db, **extra) -> str:
    name = f"cmp-{uuid.uuid4().hex[:8]}"
    db.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST", **extra)
    db.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    return name


def delete_batch_of_11(sqs, db) -> str:
    url = _queue(sqs)
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(10)])
    sqs.send_message(QueueUrl=url, MessageBody="x")
    handles: list[str] = []
    for _ in range(20):
        handles += [m["ReceiptHandle"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
        if len(handles) >= 11:
            break
    return error_code(lambda: sqs.delete_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": handle} for i, handle in enumerate(handles[:11])]))


def send_batch_of_11(sqs, db) -> str:
    url = _queue(sqs)
    return error_code(lambda: sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(11)]))


def receive_11(sqs, db) -> str:
    url = _queue(sqs)
    return error_code(lambda: sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11))


def delay_901(sqs, db) -> str:
    url = _queue(sqs)
    return error_code(lambda: sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=901))


def missing_queue(sqs, db) -> str:
    return error_code(lambda: sqs.get_queue_url(QueueName=f"nope-{uuid.uuid4().hex[:6]}"))


def queue_url_shape(sqs, db) -> str:
    url = _queue(sqs)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return f"{url.rsplit('/', 2)[0]}/… ; account {arn.split(':')[4]}"


def redrive_policy_readback(sqs, db) -> str:
    dlq = _queue(sqs)
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = _queue(sqs, RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}))
    policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"]
    return f"maxReceiveCount is {type(json.loads(policy)['maxReceiveCount']).__name__}"


def fifo_duplicate_message_id(sqs, db) -> str:
    url = _queue(sqs, FifoQueue="true")
    first = sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="d")
    second = sqs.send_message(QueueUrl=url, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="d")
    return "same MessageId" if first["MessageId"] == second["MessageId"] else "new MessageId"


def _late_by(sqs, url: str, due_in: float) -> str:
    began = time.monotonic()
    while time.monotonic() - began < due_in + 10:
        if sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages"):
            return f"{time.monotonic() - began - due_in:+.1f} s"
        time.sleep(0.05)
    return "never"


def visibility_lateness(sqs, db) -> str:
    url = _queue(sqs, VisibilityTimeout="1")
    sqs.send_message(QueueUrl=url, MessageBody="x")
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages")
    return _late_by(sqs, url, 1.0)


def delay_lateness(sqs, db) -> str:
    url = _queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=1)
    return _late_by(sqs, url, 1.0)


def client_request_token(sqs, db) -> str:
    table = _table(db)
    item = {"Update": {"TableName": table, "Key": {"pk": {"S": "k"}}, "UpdateExpression": "ADD n :one",
                       "ExpressionAttributeValues": {":one": {"N": "1"}}}}
    for _ in range(2):
        db.transact_write_items(TransactItems=[item], ClientRequestToken="same-token")
    return f"applied {db.get_item(TableName=table, Key={'pk': {'S': 'k'}})['Item']['n']['N']}x"


def transaction_same_item_twice(sqs, db) -> str:
    table = _table(db)
    put = {"Put": {"TableName": table, "Item": {"pk": {"S": "k"}}, "ConditionExpression": "attribute_not_exists(pk)"}}
    return error_code(lambda: db.transact_write_items(TransactItems=[put, put]))


def transaction_101_items(sqs, db) -> str:
    table = _table(db)
    items = [{"Put": {"TableName": table, "Item": {"pk": {"S": str(i)}}}} for i in range(101)]
    return error_code(lambda: db.transact_write_items(TransactItems=items))


def cancellation_reasons(sqs, db) -> str:
    table = _table(db)
    db.put_item(TableName=table, Item={"pk": {"S": "taken"}})
    puts = [{"Put": {"TableName": table, "Item": {"pk": {"S": key}}, "ConditionExpression": "attribute_not_exists(pk)"}}
            for key in ("free", "taken")]
    try:
        db.transact_write_items(TransactItems=puts)
    except ClientError as exc:
        return str([reason.get("Code") for reason in exc.response.get("CancellationReasons", [])])
    return "accepted"


def consistent_read_on_gsi(sqs, db) -> str:
    name = f"cmp-{uuid.uuid4().hex[:8]}"
    db.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "g", "AttributeType": "S"}],
        GlobalSecondaryIndexes=[{"IndexName": "by-g", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"}}])
    db.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    return error_code(lambda: db.query(TableName=name, IndexName="by-g", KeyConditionExpression="g = :g",
                                       ExpressionAttributeValues={":g": {"S": "x"}}, ConsistentRead=True))


def ttl_status_after_enable(sqs, db) -> str:
    table = _table(db)
    db.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    return db.describe_time_to_live(TableName=table)["TimeToLiveDescription"]["TimeToLiveStatus"]


def new_table_status(sqs, db) -> str:
    name = f"cmp-{uuid.uuid4().hex[:8]}"
    created = db.create_table(TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                              BillingMode="PAY_PER_REQUEST")
    return created["TableDescription"]["TableStatus"]


def batch_write_26(sqs, db) -> str:
    table = _table(db)
    requests = [{"PutRequest": {"Item": {"pk": {"S": str(i)}}}} for i in range(26)]
    return error_code(lambda: db.batch_write_item(RequestItems={table: requests}))


def change_visibility_beyond_12_hours(sqs, db) -> str:
    url = _queue(sqs)
    sqs.send_message(QueueUrl=url, MessageBody="x")
    handle = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]["ReceiptHandle"]
    return error_code(lambda: sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle,
                                                            VisibilityTimeout=43201))


def purge_twice(sqs, db) -> str:
    url = _queue(sqs)
    sqs.purge_queue(QueueUrl=url)
    return error_code(lambda: sqs.purge_queue(QueueUrl=url))


CHECKS = [
    Check("SQS DeleteMessageBatch with 11 entries", "TooManyEntriesInBatchRequest", delete_batch_of_11),
    Check("SQS SendMessageBatch with 11 entries", "TooManyEntriesInBatchRequest", send_batch_of_11),
    Check("SQS ReceiveMessage MaxNumberOfMessages=11", "InvalidParameterValue", receive_11),
    Check("SQS DelaySeconds=901", "InvalidParameterValue", delay_901),
    Check("SQS GetQueueUrl of a missing queue", "AWS.SimpleQueueService.NonExistentQueue", missing_queue),
    Check("SQS ChangeMessageVisibility past 12 h", "InvalidParameterValue", change_visibility_beyond_12_hours),
    Check("SQS PurgeQueue twice within 60 s", "AWS.SimpleQueueService.PurgeQueueInProgress", purge_twice),
    Check("SQS queue URL and account", "https://sqs.<region>.amazonaws.com/<account>/…", queue_url_shape),
    Check("SQS RedrivePolicy read back", "maxReceiveCount is int", redrive_policy_readback),
    Check("SQS FIFO duplicate send (same dedup id)", "same MessageId", fifo_duplicate_message_id),
    Check("SQS visibility timeout 1 s: redelivered late by", "+0.0 s (best effort)", visibility_lateness),
    Check("SQS DelaySeconds=1: delivered late by", "+0.0 s (best effort)", delay_lateness),
    Check("DynamoDB TransactWriteItems, same ClientRequestToken twice", "applied 1x", client_request_token),
    Check("DynamoDB TransactWriteItems, one item twice", "ValidationException", transaction_same_item_twice),
    Check("DynamoDB TransactWriteItems with 101 items", "ValidationException", transaction_101_items),
    Check("DynamoDB TransactionCanceled reasons", "['None', 'ConditionalCheckFailed']", cancellation_reasons),
    Check("DynamoDB Query on a GSI with ConsistentRead", "ValidationException", consistent_read_on_gsi),
    Check("DynamoDB BatchWriteItem with 26 requests", "ValidationException", batch_write_26),
    Check("DynamoDB CreateTable returns status", "CREATING", new_table_status),
    Check("DynamoDB TTL status right after enabling", "ENABLING (ENABLED within an hour)", ttl_status_after_enable),
]


def clients(endpoint: str):
    session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    config = Config(retries={"max_attempts": 1, "mode": "standard"})
    return (session.client("sqs", endpoint_url=endpoint, config=config),
            session.client("dynamodb", endpoint_url=endpoint, config=config))


def run(check: Check, sqs, db) -> str:
    try:
        return check.probe(sqs, db)
    except Exception as exc:  # a probe that breaks is an answer too
        return f"error: {type(exc).__name__}: {exc}"[:80]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--localstack", default="http://127.0.0.1:4566")
    args = parser.parse_args()
    moto = start_emulator()
    try:
        backends = {"moto": clients(moto.endpoint_url), "LocalStack": clients(args.localstack)}
        print(f"| check | AWS documents | {' | '.join(backends)} |")
        print("|---|---|" + "---|" * len(backends))
        for check in CHECKS:
            answers = [run(check, *pair) for pair in backends.values()]
            print(f"| {check.name} | {check.aws} | {' | '.join(answers)} |", flush=True)
    finally:
        moto.stop()


if __name__ == "__main__":
    main()
