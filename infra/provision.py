"""Create Pacer's tables, queues and buckets from `chalicelib.resources`, idempotently.

Run it as often as you like: existing resources are left as they are (their
queue attributes are brought back to the declaration). The endpoint comes
from `AWS_ENDPOINT_URL` alone, so the same command provisions moto,
LocalStack or a real account.

    python -m infra.provision
"""
from __future__ import annotations

import json

import boto3
from botocore.exceptions import ClientError

from chalicelib.resources import BUCKETS, QUEUES, Bucket, Queue, TABLES, Table


def ensure_table(dynamodb, table: Table) -> None:
    key_schema = [{"AttributeName": table.hash_key, "KeyType": "HASH"}]
    if table.range_key:
        key_schema.append({"AttributeName": table.range_key, "KeyType": "RANGE"})
    request = {
        "TableName": table.name,
        "KeySchema": key_schema,
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": kind} for name, kind in table.attributes.items()
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if table.stream_view:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": table.stream_view}
    if table.indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [{"AttributeName": index.hash_key, "KeyType": "HASH"}]
                + ([{"AttributeName": index.range_key, "KeyType": "RANGE"}] if index.range_key else []),
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in table.indexes
        ]
    try:
        dynamodb.create_table(**request)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
    dynamodb.get_waiter("table_exists").wait(TableName=table.name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    stream = dynamodb.describe_table(TableName=table.name)["Table"].get("StreamSpecification", {})
    if table.stream_view and not stream.get("StreamEnabled"):  # a table provisioned before it had a stream
        dynamodb.update_table(TableName=table.name,
                              StreamSpecification={"StreamEnabled": True, "StreamViewType": table.stream_view})
    if table.ttl_attribute:
        ttl = dynamodb.describe_time_to_live(TableName=table.name)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            dynamodb.update_time_to_live(
                TableName=table.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
            )


def queue_attributes(sqs, queue: Queue) -> dict[str, str]:
    attributes = {
        "VisibilityTimeout": str(queue.visibility_timeout),
        "MessageRetentionPeriod": str(queue.retention_seconds),
        **queue.attributes,
    }
    if queue.dead_letter:
        dlq_url = sqs.get_queue_url(QueueName=queue.dead_letter.name)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue.max_receive_count)}
        )
    return attributes


def ensure_queue(sqs, queue: Queue) -> str:
    attributes = queue_attributes(sqs, queue)
    try:
        url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise
        return sqs.create_queue(QueueName=queue.name, Attributes=attributes)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url


def ensure_bucket(s3, bucket: Bucket) -> None:
    try:
        s3.head_bucket(Bucket=bucket.name)
        return
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket", "NotFound"):
            raise
    region = s3.meta.region_name
    # us-east-1 is S3's default location and refuses to be named as a constraint.
    config = {} if region in (None, "us-east-1") else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket.name, **config)


def provision(session: boto3.session.Session | None = None) -> None:
    session = session or boto3.session.Session()
    dynamodb = session.client("dynamodb")
    sqs = session.client("sqs")
    for table in TABLES:
        ensure_table(dynamodb, table)
    for queue in QUEUES:
        ensure_queue(sqs, queue)
    s3 = session.client("s3")
    for bucket in BUCKETS:
        ensure_bucket(s3, bucket)


def main() -> None:
    provision()
    names = ", ".join([t.name for t in TABLES] + [q.name for q in QUEUES] + [b.name for b in BUCKETS])
    print(f"provisioned: {names}")


if __name__ == "__main__":
    main()
