"""The generated resources, deployed through CloudFormation to the emulator, exist as declared.

Everything in the deploy template except the Lambda functions (which no
emulator here can run) goes through `CreateStack`: the tables with their keys,
TTL and GSIs, the queues with their DLQs and redrive policies. The emulator is
AWS_ENDPOINT_URL when it is set (the LocalStack lane), else a moto server of
this module's own.
"""
from __future__ import annotations

import json
import os
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib import resources as declared
from chalicelib.resources import Index, Queue, Table
from infra.deploy.template import app_graph, data_resources, deployed_visibility_timeouts, resources_template
from infra.emulator import start_emulator

pytestmark = pytest.mark.deploy
# A region of the stack's own: suites sharing one emulator keep their
# same-named tables and queues apart by region, as two AWS regions do.
REGION = "eu-west-1"
EMULATOR_DEFAULTS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@pytest.fixture(scope="module")
def aws():
    emulator = None if os.environ.get("AWS_ENDPOINT_URL") else start_emulator()
    endpoint = emulator.endpoint_url if emulator else os.environ["AWS_ENDPOINT_URL"]
    session = boto3.session.Session(
        region_name=REGION, **{name.lower(): os.environ.get(name, default) for name, default in EMULATOR_DEFAULTS.items()})
    yield {name: session.client(name, endpoint_url=endpoint) for name in ("cloudformation", "dynamodb", "s3", "sqs", "sts")}
    if emulator:
        emulator.stop()


def deploy(aws, template: dict) -> str:
    """Create a stack from the template, wait for CREATE_COMPLETE, and return its name."""
    name = f"pacer-test-{uuid.uuid4().hex[:8]}"
    aws["cloudformation"].create_stack(StackName=name, TemplateBody=json.dumps(template))
    try:
        aws["cloudformation"].get_waiter("stack_create_complete").wait(
            StackName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    except Exception:
        events = aws["cloudformation"].describe_stack_events(StackName=name)["StackEvents"]
        reasons = [f"{e['LogicalResourceId']}: {e['ResourceStatus']} {e.get('ResourceStatusReason', '')}" for e in events]
        raise AssertionError("stack creation failed:\n" + "\n".join(reasons))
    return name


def account(aws) -> str:
    return aws["sts"].get_caller_identity()["Account"]  # moto's 123456789012, LocalStack's 000000000000


def deployed_bucket_name(aws, bucket) -> str:
    """The template names a bucket <name>-<account>-<region>, since S3 names are global."""
    return f"{bucket.name}-{account(aws)}-{REGION}"


def tear_down(aws, stack: str, tables: list[str], buckets: list[str] = ()) -> None:
    aws["cloudformation"].delete_stack(StackName=stack)
    aws["cloudformation"].get_waiter("stack_delete_complete").wait(
        StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    for table in tables:  # DeletionPolicy: Retain keeps tables on AWS; the emulator need not keep them
        try:
            aws["dynamodb"].delete_table(TableName=table)
        except ClientError:
            pass
    for bucket in buckets:  # Retain keeps the datalake on AWS too
        try:
            for found in aws["s3"].list_objects_v2(Bucket=bucket).get("Contents", []):
                aws["s3"].delete_object(Bucket=bucket, Key=found["Key"])
            aws["s3"].delete_bucket(Bucket=bucket)
        except ClientError:
            pass


def assert_table_as_declared(aws, table: Table) -> None:
    description = aws["dynamodb"].describe_table(TableName=table.name)["Table"]
    assert description["TableStatus"] == "ACTIVE"
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    expected_keys = [{"AttributeName": table.hash_key, "KeyType": "HASH"}] + (
        [{"AttributeName": table.range_key, "KeyType": "RANGE"}] if table.range_key else [])
    assert description["KeySchema"] == expected_keys
    indexes = {i["IndexName"]: i for i in description.get("GlobalSecondaryIndexes", [])}
    assert set(indexes) == {index.name for index in table.indexes}
    for index in table.indexes:
        assert indexes[index.name]["KeySchema"] == [{"AttributeName": index.hash_key, "KeyType": "HASH"}] + (
            [{"AttributeName": index.range_key, "KeyType": "RANGE"}] if index.range_key else [])
        assert indexes[index.name]["Projection"]["ProjectionType"] == "ALL"
    ttl = aws["dynamodb"].describe_time_to_live(TableName=table.name)["TimeToLiveDescription"]
    if table.ttl_attribute:
        assert ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING") and ttl["AttributeName"] == table.ttl_attribute
    else:
        assert ttl["TimeToLiveStatus"] == "DISABLED"
    stream = description.get("StreamSpecification", {})
    if table.stream_view:
        assert stream.get("StreamEnabled") and stream["StreamViewType"] == table.stream_view
        assert description["LatestStreamArn"].startswith(
            f"arn:aws:dynamodb:{REGION}:{account(aws)}:table/{table.name}/stream/")
    else:
        assert not stream.get("StreamEnabled")


def assert_queue_as_declared(aws, queue: Queue, visibility_timeout: int) -> None:
    url = aws["sqs"].get_queue_url(QueueName=queue.name)["QueueUrl"]
    attributes = aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert int(attributes["VisibilityTimeout"]) == visibility_timeout
    assert int(attributes["MessageRetentionPeriod"]) == queue.retention_seconds
    for name, value in queue.attributes.items():
        assert attributes[name] == value, name
    if queue.dead_letter:
        dlq_url = aws["sqs"].get_queue_url(QueueName=queue.dead_letter.name)["QueueUrl"]
        dlq_arn = aws["sqs"].get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        policy = json.loads(attributes["RedrivePolicy"])
        assert policy["deadLetterTargetArn"] == dlq_arn
        # AWS returns a number; some emulators echo the string they were given.
        assert int(policy["maxReceiveCount"]) == queue.max_receive_count
    else:
        assert "RedrivePolicy" not in attributes


def test_the_generated_tables_and_queues_deploy_through_cloudformation_as_declared(aws):
    graph = app_graph("dev")
    stack = deploy(aws, resources_template(graph))
    buckets = [deployed_bucket_name(aws, bucket) for bucket in declared.BUCKETS]
    try:
        for table in declared.TABLES:
            assert_table_as_declared(aws, table)
        for bucket in buckets:  # the datalake, named per account and region since S3 names are global
            aws["s3"].head_bucket(Bucket=bucket)
            aws["s3"].put_object(Bucket=bucket, Key="results/date=2026-01-01/probe.ndjson", Body=b"{}\n")
        visibility = deployed_visibility_timeouts(graph)
        for queue in declared.QUEUES:
            assert_queue_as_declared(aws, queue, visibility.get(queue.name, queue.visibility_timeout))
        # Lambda refuses a source queue whose visibility is shorter than the function's timeout.
        for mapping in graph.sqs:
            url = aws["sqs"].get_queue_url(QueueName=mapping.queue)["QueueUrl"]
            seconds = aws["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
            assert int(seconds["Attributes"]["VisibilityTimeout"]) >= 6 * mapping.timeout
    finally:
        tear_down(aws, stack, [t.name for t in declared.TABLES], buckets)


def test_declared_indexes_ttl_and_fifo_attributes_deploy_through_cloudformation(aws):
    # Pacer declares no GSI or FIFO queue yet; the typed-jobs work will. This
    # declaration exercises those paths of the generator against CloudFormation.
    suffix = uuid.uuid4().hex[:6]
    table = Table(name=f"gen-jobs-{suffix}", hash_key="pk", range_key="sk", ttl_attribute="expires_at",
                  indexes=(Index("by-status", "status", "due_at"), Index("by-caller", "caller")))
    dlq = Queue(name=f"gen-dlq-{suffix}.fifo", visibility_timeout=60, attributes={"FifoQueue": "true"})
    queue = Queue(name=f"gen-{suffix}.fifo", visibility_timeout=120, max_receive_count=3, dead_letter=dlq,
                  attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})
    template = {"AWSTemplateFormatVersion": "2010-09-09",
                "Resources": data_resources(tables=(table,), queues=(dlq, queue), buckets=())}
    stack = deploy(aws, template)
    try:
        assert_table_as_declared(aws, table)
        assert_queue_as_declared(aws, dlq, 60)
        assert_queue_as_declared(aws, queue, 120)
    finally:
        tear_down(aws, stack, [table.name])
