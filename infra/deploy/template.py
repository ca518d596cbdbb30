"""The deploy template, generated from the one resource declaration and the app's event sources.

`chalice package --merge-template` deep-merges a template into the SAM
template it generates (dictionaries merge key by key; any other value,
lists included, replaces chalice's). This module writes that template:

- every table and queue in `chalicelib/resources.py`, as CloudFormation
  resources: DynamoDB on demand with its TTL and GSIs; SQS with its DLQ,
  RedrivePolicy and a visibility timeout of at least six times the timeout of
  the function the queue triggers (Lambda refuses a mapping whose queue's
  visibility is shorter than the function's timeout, and advises six times);
- on each SQS event source mapping: `FunctionResponseTypes:
  [ReportBatchItemFailures]` (chalice has no option for it, aws/chalice#2029),
  and `ScalingConfig.MaximumConcurrency`;
- every bucket (the datalake), named `<name>-<account>-<region>` since S3
  names are global, encrypted, versioned off, public access blocked;
- each table's stream (`StreamSpecification`), and on each DynamoDB stream
  event source: the table's real `StreamArn` (the decorator can only say
  `/stream/*`, see resources.Table.stream_arn), `FunctionResponseTypes:
  [ReportBatchItemFailures]`, and `BisectBatchOnFunctionError: false` (a
  bisected batch would be written under other keys: docs/RUNTIME.md);
- each function's environment variables that name a table, queue or bucket, as
  references to it, so CloudFormation creates the queue before the function
  and its event source mapping;
- each function's name, as `chalice deploy` would give it (pacer-dev-…);
- each function role's policy, least privilege: the data actions Pacer uses,
  on Pacer's own tables, indexes and queues in the stack's account and
  region, and the functions' own log groups;
- `AdminToken`, a NoEcho parameter that reaches the API as PACER_ADMIN_TOKEN;
- X-Ray tracing on every function (`Tracing: Active`), with the two X-Ray
  actions on each role (X-Ray has no resource-level permissions, so they name
  `*`); Powertools' JSON log lines carry the trace id (`xray_trace_id`);
- CloudWatch alarms (docs/DEPLOY.md): any message in a DLQ, the jobs queue's
  oldest message too old, and each function's error rate and throttles, with
  an optional `AlarmTopicArn` parameter (an SNS topic) for their actions.

The names chalice gives its resources (`ProcessJobs`, `ProcessJobsRole`,
`ProcessJobsSqsEventSource`, …) come from chalice's own application graph, so
the merge lands on the resources chalice generates.

    python -m infra.deploy.template --stage dev --out out/merge-template-dev.json
    python -m infra.deploy.template --stage dev --resources-only --out out/resources-dev.json

`python -m infra.deploy.package` (`make package`) writes it, with the stage's
policy file, and runs `chalice package`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from chalicelib import resources as declared
from chalicelib.resources import Bucket, Queue, Table

ROOT = Path(__file__).resolve().parents[2]

# AWS: "set the source queue's visibility timeout to at least six times the
# timeout that you configure on your function" (plus the batching window).
VISIBILITY_FACTOR = 6
# A mapping whose handler declares no maximum_concurrency still gets a cap, so
# that a backlog cannot take the whole account's concurrency (AWS allows 2-1000).
DEFAULT_MAXIMUM_CONCURRENCY = 20
# The logical id chalice's SAM generator gives the function behind the REST API.
API_HANDLER = "APIHandler"

DYNAMODB_ACTIONS = [
    # Every DynamoDB call chalicelib makes; TransactWriteItems and the batch
    # calls are authorised per item action.
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
]
SQS_ACTIONS = [
    # Sends (SendMessageBatch is SendMessage), the DLQ's peek and redrive, and
    # what Lambda's poller needs from a source queue.
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ReceiveMessage",
    "sqs:SendMessage",
]
LOGS_ACTIONS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
# What Lambda's poller needs from a table's stream.
STREAM_ACTIONS = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                  "dynamodb:ListStreams"]
# The datalake: objects written whole, listed per date and read for the export.
S3_OBJECT_ACTIONS = ["s3:GetObject", "s3:PutObject"]
S3_BUCKET_ACTIONS = ["s3:ListBucket"]
# What Lambda's active tracing needs of a role it did not make (chalice makes them): X-Ray's documented
# write-only actions, which take no resource narrower than "*".
XRAY_ACTIONS = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]

# Alarms. A period is a minute: SQS and Lambda publish their metrics each minute.
ALARM_PERIOD_S = 60
# The oldest job message may be this old before the jobs queue alarms: a redelivered message backs off for seconds,
# a retry waits at most a minute (RetryPolicy.max_delay_s) and a held-back one a Lambda timeout, so five minutes
# means the workers are not keeping up (or not running).
OLDEST_JOB_ALARM_S = 300
# A function's errors, as a share of its invocations over five minutes, above which it alarms. Errors are whole
# failed invocations (a batch item failure is not one), so a few percent is already a fault.
ERROR_RATE_ALARM_PERCENT = 5
ERROR_RATE_MINUTES = 5


def cfn_name(name: str) -> str:
    """A declared name as a CloudFormation logical id: pacer-jobs-dlq -> PacerJobsDlq."""
    from chalice.utils import to_cfn_resource_name

    return to_cfn_resource_name(name)


# ---- data resources ---------------------------------------------------------------------------


def table_resource(table: Table) -> dict:
    key_schema = [{"AttributeName": table.hash_key, "KeyType": "HASH"}]
    if table.range_key:
        key_schema.append({"AttributeName": table.range_key, "KeyType": "RANGE"})
    properties: dict = {
        "TableName": table.name,
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": key_schema,
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": kind} for name, kind in table.attributes.items()
        ],
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
    }
    if table.indexes:
        properties["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [{"AttributeName": index.hash_key, "KeyType": "HASH"}]
                + ([{"AttributeName": index.range_key, "KeyType": "RANGE"}] if index.range_key else []),
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in table.indexes
        ]
    if table.ttl_attribute:
        properties["TimeToLiveSpecification"] = {"AttributeName": table.ttl_attribute, "Enabled": True}
    if table.stream_view:
        properties["StreamSpecification"] = {"StreamViewType": table.stream_view}
    # Job results and run state outlive a stack that is deleted or replaced by mistake.
    return {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain",
            "Properties": properties}


def queue_resource(queue: Queue, visibility_timeout: int) -> dict:
    properties: dict = {
        "QueueName": queue.name,
        "VisibilityTimeout": visibility_timeout,
        "MessageRetentionPeriod": queue.retention_seconds,
        "SqsManagedSseEnabled": True,
    }
    for name, value in queue.attributes.items():  # e.g. FifoQueue, ContentBasedDeduplication
        properties[name] = _cfn_value(value)
    if queue.dead_letter:
        properties["RedrivePolicy"] = {
            "deadLetterTargetArn": {"Fn::GetAtt": [cfn_name(queue.dead_letter.name), "Arn"]},
            "maxReceiveCount": queue.max_receive_count,
        }
    return {"Type": "AWS::SQS::Queue", "Properties": properties}


def bucket_name(bucket: Bucket) -> dict:
    """S3 names are global: the stack's account and region make the declared name unique."""
    return {"Fn::Sub": f"{bucket.name}-${{AWS::AccountId}}-${{AWS::Region}}"}


def bucket_resource(bucket: Bucket) -> dict:
    # The datalake outlives a stack deleted or replaced by mistake, as the tables do.
    return {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain", "Properties": {
        "BucketName": bucket_name(bucket),
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
    }}


def _cfn_value(value: str):
    """SQS attributes are strings in the API; CloudFormation wants booleans and numbers typed."""
    if value in ("true", "false"):
        return value == "true"
    return int(value) if value.isdigit() else value


def data_resources(visibility: dict[str, int] | None = None, tables: tuple[Table, ...] = declared.TABLES,
                   queues: tuple[Queue, ...] = declared.QUEUES,
                   buckets: tuple[Bucket, ...] = declared.BUCKETS) -> dict:
    """Tables and queues as CloudFormation resources, keyed by logical id.

    `visibility` gives the visibility timeouts that differ from the
    declaration (see `deployed_visibility_timeouts`).
    """
    visibility = visibility or {}
    out = {cfn_name(table.name): table_resource(table) for table in tables}
    for queue in queues:
        out[cfn_name(queue.name)] = queue_resource(queue, visibility.get(queue.name, queue.visibility_timeout))
    for bucket in buckets:
        out[cfn_name(bucket.name)] = bucket_resource(bucket)
    return out


def resources_template(graph: "AppGraph") -> dict:
    """A stand-alone template of the data resources only (no functions): what the emulator test deploys.

    Its resources are the merge template's own, so what is tested is what ships.
    """
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"{graph.app_name} ({graph.stage}): tables, queues and buckets from chalicelib/resources.py",
        "Resources": data_resources(deployed_visibility_timeouts(graph)),
    }


# ---- the app, as chalice models it --------------------------------------------------------------


@dataclass(frozen=True)
class SqsMapping:
    function: str  # chalice's function name, e.g. process_jobs
    queue: str
    timeout: int  # the function's Lambda timeout, seconds
    batching_window: int
    maximum_concurrency: int | None

    @property
    def event_cfn_name(self) -> str:
        return cfn_name(f"{self.function}-sqs-event-source")


@dataclass(frozen=True)
class StreamMapping:
    function: str  # chalice's function name, e.g. results_to_datalake
    table: str  # the declared table whose stream it reads

    @property
    def event_cfn_name(self) -> str:
        return cfn_name(f"{self.function}-dynamodb-event-source")


@dataclass(frozen=True)
class AppGraph:
    app_name: str
    stage: str
    functions: dict[str, str]  # every Lambda function chalice will generate -> its logical id
    function_names: dict[str, str]  # function -> its Lambda name, as `chalice deploy` names it (pacer-dev-…)
    environments: dict[str, dict[str, str]]  # function -> its environment variables
    roles: dict[str, str]  # function -> logical id of its managed role
    policy_files: tuple[str, ...]  # the .chalice policy files chalice will read (autogen_policy: false)
    sqs: tuple[SqsMapping, ...]
    schedules: dict[str, str]  # function -> schedule expression
    streams: tuple[StreamMapping, ...] = ()


def app_graph(stage: str, project_dir: Path = ROOT) -> AppGraph:
    """What `chalice package --stage STAGE` will generate, from chalice's own application graph."""
    from chalice.deploy import models
    from chalice.deploy.appgraph import ApplicationGraphBuilder, DependencyBuilder

    from infra.runtime.project import load_project

    # Loading the app puts the stage's environment variables into os.environ,
    # as chalice does; a generator leaves its caller's environment as it was.
    saved = dict(os.environ)
    try:
        project = load_project(str(project_dir), stage)
        application = ApplicationGraphBuilder().build(project.config, stage)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    from infra.runtime.stream_batch import table_of

    functions, function_names, environments, roles, sqs, schedules, policy_files = {}, {}, {}, {}, [], {}, set()
    streams = []
    for resource in DependencyBuilder().build_dependencies(application):
        if isinstance(resource, models.LambdaFunction):
            functions[resource.resource_name] = cfn_name(resource.resource_name)
            function_names[resource.resource_name] = resource.function_name
            environments[resource.resource_name] = dict(resource.environment_variables or {})
            if isinstance(resource.role, models.ManagedIAMRole):
                roles[resource.resource_name] = cfn_name(resource.role.resource_name)
                if isinstance(resource.role.policy, models.FileBasedIAMPolicy):
                    policy_files.add(resource.role.policy.filename)
        elif isinstance(resource, models.SQSEventSource):
            if isinstance(resource.queue, models.QueueARN):
                raise ValueError(f"{resource.resource_name}: queues are declared by name in chalicelib/resources.py")
            sqs.append(SqsMapping(
                function=resource.lambda_function.resource_name,
                queue=resource.queue,
                timeout=resource.lambda_function.timeout,
                batching_window=resource.maximum_batching_window_in_seconds or 0,
                maximum_concurrency=resource.maximum_concurrency,
            ))
        elif isinstance(resource, models.DynamoDBEventSource):
            table = table_of(resource.stream_arn)
            if table not in {t.name for t in declared.TABLES if t.stream_view}:
                raise ValueError(f"{resource.resource_name} reads the stream of {table!r}, which chalicelib/resources.py "
                                 "does not declare with a stream")
            streams.append(StreamMapping(function=resource.lambda_function.resource_name, table=table))
        elif isinstance(resource, models.ScheduledEvent):
            schedules[resource.lambda_function.resource_name] = resource.schedule_expression
        elif isinstance(resource, models.RestAPI):
            # chalice's SAM generator renames the REST API's function to APIHandler.
            functions[resource.lambda_function.resource_name] = API_HANDLER
    return AppGraph(project.config.app_name, stage, functions, function_names, environments, roles,
                    tuple(sorted(policy_files)), tuple(sqs), schedules, tuple(streams))


def deployed_visibility_timeouts(graph: AppGraph) -> dict[str, int]:
    """Each queue's visibility timeout on AWS: the declared one, raised where Lambda needs more."""
    declared_queues = {queue.name: queue for queue in declared.QUEUES}
    out = {}
    for mapping in graph.sqs:
        if mapping.queue not in declared_queues:
            raise ValueError(f"{mapping.function} reads {mapping.queue!r}, which chalicelib/resources.py does not declare")
        needed = VISIBILITY_FACTOR * mapping.timeout + mapping.batching_window
        out[mapping.queue] = max(out.get(mapping.queue, 0), declared_queues[mapping.queue].visibility_timeout, needed)
    return out


def visibility_warnings(graph: AppGraph) -> list[str]:
    declared_queues = {queue.name: queue for queue in declared.QUEUES}
    return [
        f"{name}: visibility timeout {declared_queues[name].visibility_timeout} s declared, {seconds} s deployed "
        f"(Lambda needs at least {VISIBILITY_FACTOR}x the timeout of the function it triggers)"
        for name, seconds in deployed_visibility_timeouts(graph).items()
        if seconds != declared_queues[name].visibility_timeout
    ]


# ---- IAM ---------------------------------------------------------------------------------------


def _arn(service: str, resource: str, pinned: bool):
    """An ARN in the stack's own partition, region and account, or (pinned=False) any of them."""
    if pinned:
        return {"Fn::Sub": f"arn:${{AWS::Partition}}:{service}:${{AWS::Region}}:${{AWS::AccountId}}:{resource}"}
    return f"arn:aws:{service}:*:*:{resource}"


def iam_policy(app_name: str, stage: str, pinned: bool = True) -> dict:
    """One policy for Pacer's functions: named actions on named resources, nothing else.

    pinned=True (for the template) scopes every ARN to the stack's account and
    region; pinned=False gives the literal form a `.chalice/policy-<stage>.json`
    must have, since chalice copies that file verbatim.
    """
    table_arns = []
    for table in declared.TABLES:
        table_arns.append(_arn("dynamodb", f"table/{table.name}", pinned))
        if table.indexes:
            table_arns.append(_arn("dynamodb", f"table/{table.name}/index/*", pinned))
    queue_arns = [_arn("sqs", queue.name, pinned) for queue in declared.QUEUES]
    stream_arns = [_arn("dynamodb", f"table/{table.name}/stream/*", pinned) for table in declared.TABLES
                   if table.stream_view]
    if pinned:
        bucket_arns = [{"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{b.name}-${{AWS::AccountId}}-${{AWS::Region}}"}
                       for b in declared.BUCKETS]
        object_arns = [{"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{b.name}-${{AWS::AccountId}}-${{AWS::Region}}/*"}
                       for b in declared.BUCKETS]
    else:
        bucket_arns = [f"arn:aws:s3:::{b.name}-*" for b in declared.BUCKETS]
        object_arns = [f"arn:aws:s3:::{b.name}-*/*" for b in declared.BUCKETS]
    # Functions are named <app>-<stage> (the API) and <app>-<stage>-<handler>, in
    # the template as by `chalice deploy`, so their log groups are known.
    prefix = f"log-group:/aws/lambda/{app_name}-{stage}"
    logs = [_arn("logs", resource, pinned)
            for resource in (prefix, f"{prefix}:log-stream:*", f"{prefix}-*", f"{prefix}-*:log-stream:*")]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "PacerTables", "Effect": "Allow", "Action": DYNAMODB_ACTIONS, "Resource": table_arns},
            {"Sid": "PacerQueues", "Effect": "Allow", "Action": SQS_ACTIONS, "Resource": queue_arns},
            {"Sid": "PacerStreams", "Effect": "Allow", "Action": STREAM_ACTIONS, "Resource": stream_arns},
            {"Sid": "PacerDatalake", "Effect": "Allow", "Action": S3_BUCKET_ACTIONS, "Resource": bucket_arns},
            {"Sid": "PacerDatalakeObjects", "Effect": "Allow", "Action": S3_OBJECT_ACTIONS, "Resource": object_arns},
            {"Sid": "FunctionLogs", "Effect": "Allow", "Action": LOGS_ACTIONS, "Resource": logs},
            {"Sid": "Tracing", "Effect": "Allow", "Action": XRAY_ACTIONS, "Resource": "*"},
        ],
    }


# ---- the merge template -------------------------------------------------------------------------


def resource_references(environment: dict[str, str]) -> dict:
    """Environment variables that name a declared table or queue, as references to its resource.

    The value stays the same name, but CloudFormation now creates the table or
    queue before the function, and so before the function's event source
    mapping, which fails if its queue does not exist yet.
    """
    tables = {table.name: {"Ref": cfn_name(table.name)} for table in declared.TABLES}
    queues = {queue.name: {"Fn::GetAtt": [cfn_name(queue.name), "QueueName"]} for queue in declared.QUEUES}
    buckets = {bucket.name: {"Ref": cfn_name(bucket.name)} for bucket in declared.BUCKETS}
    known = {**tables, **queues, **buckets}
    return {name: known[value] for name, value in environment.items() if value in known}


# ---- alarms ---------------------------------------------------------------------------------------

ALARM_TOPIC = "AlarmTopicArn"
HAS_ALARM_TOPIC = "HasAlarmTopic"


def _alarm(description: str, properties: dict) -> dict:
    """An alarm that tells the optional SNS topic when it fires and when it clears."""
    actions = {"Fn::If": [HAS_ALARM_TOPIC, [{"Ref": ALARM_TOPIC}], {"Ref": "AWS::NoValue"}]}
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "AlarmDescription": description, "AlarmActions": actions, "OKActions": actions,
        "TreatMissingData": "notBreaching", **properties}}


def _queue_alarm(queue: Queue, metric: str, threshold: int, periods: int, description: str) -> dict:
    return _alarm(description, {
        "Namespace": "AWS/SQS", "MetricName": metric, "Statistic": "Maximum",
        "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [cfn_name(queue.name), "QueueName"]}}],
        "Period": ALARM_PERIOD_S, "EvaluationPeriods": periods, "Threshold": threshold,
        "ComparisonOperator": "GreaterThanThreshold"})


def _lambda_metric(metric_id: str, function: str, metric: str, period: int) -> dict:
    return {"Id": metric_id, "ReturnData": False, "MetricStat": {
        "Metric": {"Namespace": "AWS/Lambda", "MetricName": metric,
                   "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": function}}]},
        "Period": period, "Stat": "Sum"}}


def alarm_resources(graph: AppGraph) -> dict:
    """Each DLQ holding any message, the jobs queue's oldest message, and each function's error rate and
    throttles, keyed by logical id."""
    alarms: dict[str, dict] = {}
    for dlq in sorted({q.dead_letter.name: q.dead_letter for q in declared.QUEUES if q.dead_letter}.values(),
                      key=lambda q: q.name):
        alarms[f"{cfn_name(dlq.name)}DepthAlarm"] = _queue_alarm(
            dlq, "ApproximateNumberOfMessagesVisible", 0, 1,
            f"{dlq.name} holds messages that failed every receive: inspect and redrive them (GET /api/dlq)")
    alarms[f"{cfn_name(declared.JOBS_QUEUE.name)}OldestMessageAlarm"] = _queue_alarm(
        declared.JOBS_QUEUE, "ApproximateAgeOfOldestMessage", OLDEST_JOB_ALARM_S, 5,
        f"the oldest job message has waited over {OLDEST_JOB_ALARM_S} s for five minutes: the workers are behind")
    period = ERROR_RATE_MINUTES * 60
    for function, logical_id in sorted(graph.functions.items()):
        alarms[f"{logical_id}ErrorRateAlarm"] = _alarm(
            f"{function}: over {ERROR_RATE_ALARM_PERCENT}% of invocations failed in {ERROR_RATE_MINUTES} minutes", {
                "Metrics": [
                    _lambda_metric("errors", logical_id, "Errors", period),
                    _lambda_metric("invocations", logical_id, "Invocations", period),
                    {"Id": "rate", "Label": "error rate (%)", "ReturnData": True,
                     "Expression": "IF(invocations > 0, 100 * errors / invocations, 0)"}],
                "EvaluationPeriods": 1, "Threshold": ERROR_RATE_ALARM_PERCENT,
                "ComparisonOperator": "GreaterThanThreshold"})
        alarms[f"{logical_id}ThrottlesAlarm"] = _alarm(f"{function}: invocations throttled", {
            "Namespace": "AWS/Lambda", "MetricName": "Throttles", "Statistic": "Sum",
            "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": logical_id}}],
            "Period": ALARM_PERIOD_S, "EvaluationPeriods": 1, "Threshold": 0,
            "ComparisonOperator": "GreaterThanThreshold"})
    return alarms


def merge_template(graph: AppGraph) -> dict:
    template_resources = data_resources(deployed_visibility_timeouts(graph))
    policy = iam_policy(graph.app_name, graph.stage, pinned=True)
    for role in graph.roles.values():
        # A list replaces chalice's whole list: this is the role's only policy.
        template_resources[role] = {
            "Properties": {"Policies": [{"PolicyName": f"{role}Policy", "PolicyDocument": policy}]}
        }
    functions: dict[str, dict] = {}
    for function, logical_id in graph.functions.items():
        variables = resource_references(graph.environments.get(function, {}))
        if logical_id == API_HANDLER:
            variables["PACER_ADMIN_TOKEN"] = {"Ref": "AdminToken"}
        # chalice's SAM template leaves functions unnamed (CloudFormation would
        # make up <stack>-<id>-<random>); named, their log groups can be granted.
        functions[logical_id] = {"FunctionName": graph.function_names[function], "Tracing": "Active"}
        if variables:
            functions[logical_id]["Environment"] = {"Variables": variables}
    for mapping in graph.sqs:
        events = functions.setdefault(graph.functions[mapping.function], {}).setdefault("Events", {})
        events[mapping.event_cfn_name] = {
            "Properties": {
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "ScalingConfig": {"MaximumConcurrency": mapping.maximum_concurrency or DEFAULT_MAXIMUM_CONCURRENCY},
            }
        }
    for stream in graph.streams:
        events = functions.setdefault(graph.functions[stream.function], {}).setdefault("Events", {})
        events[stream.event_cfn_name] = {
            "Properties": {
                "Stream": {"Fn::GetAtt": [cfn_name(stream.table), "StreamArn"]},
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "BisectBatchOnFunctionError": False,
            }
        }
    for logical_id, properties in functions.items():
        template_resources[logical_id] = {"Properties": properties}
    template_resources.update(alarm_resources(graph))
    return {
        "Parameters": {
            "AdminToken": {
                "Type": "String",
                "NoEcho": True,
                "MinLength": 16,
                "Description": "Bearer token for Pacer's admin endpoints (PACER_ADMIN_TOKEN)",
            },
            ALARM_TOPIC: {
                "Type": "String",
                "Default": "",
                "Description": "An SNS topic's ARN that the alarms notify when they fire and clear (empty: none)",
            },
        },
        "Conditions": {HAS_ALARM_TOPIC: {"Fn::Not": [{"Fn::Equals": [{"Ref": ALARM_TOPIC}, ""]}]}},
        "Resources": template_resources,
        "Outputs": {
            **{f"{cfn_name(t.name)}Name": {"Value": {"Ref": cfn_name(t.name)}} for t in declared.TABLES},
            **{f"{cfn_name(q.name)}Url": {"Value": {"Ref": cfn_name(q.name)}} for q in declared.QUEUES},
            **{f"{cfn_name(b.name)}Name": {"Value": {"Ref": cfn_name(b.name)}} for b in declared.BUCKETS},
        },
    }


def policy_file_text(graph: AppGraph) -> str:
    """What each of the stage's .chalice policy files must hold."""
    return json.dumps(iam_policy(graph.app_name, graph.stage, pinned=False), indent=2) + "\n"


def write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Generate Pacer's deploy template from chalicelib/resources.py.")
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--out", type=Path, required=True, help="where to write the template (JSON)")
    parser.add_argument("--resources-only", action="store_true",
                        help="a stand-alone template of the tables and queues, without the functions")
    args = parser.parse_args(argv)
    graph = app_graph(args.stage)
    for warning in visibility_warnings(graph):
        print(f"template: {warning}", file=sys.stderr)
    write_json(args.out, resources_template(graph) if args.resources_only else merge_template(graph))
    print(f"template: wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
