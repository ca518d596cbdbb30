"""`make package`'s output: chalice's SAM template with the generated merge, as AWS would receive it.

The template is packaged once (as `make package STAGE=dev` does, into a
temporary folder), linted with cfn-lint, and translated by AWS's own SAM
translator into the plain CloudFormation that Lambda, SQS and IAM see, so the
tests can check what actually lands on the event source mappings.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from chalice.app import DynamoDBEventConfig, ScheduledEventConfig, SQSEventConfig

from chalicelib import resources as declared
from infra.deploy.package import package
from infra.deploy.template import (
    ALARM_TOPIC,
    API_HANDLER,
    DEFAULT_MAXIMUM_CONCURRENCY,
    OLDEST_JOB_ALARM_S,
    VISIBILITY_FACTOR,
    XRAY_ACTIONS,
    app_graph,
    cfn_name,
    policy_file_text,
)
from infra.runtime.project import load_project

pytestmark = pytest.mark.deploy
ROOT = Path(__file__).resolve().parents[2]
STAGE = "dev"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> Path:
    # write_policies=False: a test must not rewrite the committed policy file
    # (test_the_committed_policy_file_is_the_generated_one checks it instead).
    return package(STAGE, tmp_path_factory.mktemp("package"), write_policies=False)


@pytest.fixture(scope="module")
def sam(packaged) -> dict:
    return json.loads(packaged.read_text())


@pytest.fixture(scope="module")
def cloudformation(sam) -> dict:
    """The template after AWS's SAM transform, with code where `aws cloudformation package` would put it."""
    from samtranslator.translator.transform import transform

    template = json.loads(json.dumps(sam))
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://pacer-artifacts/deployment.zip"

    class NoManagedPolicies:
        def load(self):
            return {}

    region = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"  # the translator builds ARNs for some region
    try:
        return transform(template, {"AdminToken": "x" * 32}, NoManagedPolicies())
    finally:
        if region is None:
            os.environ.pop("AWS_DEFAULT_REGION")
        else:
            os.environ["AWS_DEFAULT_REGION"] = region


@pytest.fixture(scope="module")
def app():
    return load_project(str(ROOT), STAGE).app


def of_type(template: dict, kind: str) -> dict[str, dict]:
    return {name: r for name, r in template["Resources"].items() if r.get("Type") == kind}


def cfn_lint(path: Path) -> subprocess.CompletedProcess:
    lint = Path(sys.executable).with_name("cfn-lint")
    return subprocess.run([str(lint), "--format", "parseable", str(path)], capture_output=True, text=True,
                          env={**os.environ, "AWS_DEFAULT_REGION": "us-east-1"})


def lint_errors(result: subprocess.CompletedProcess) -> list[str]:
    # cfn-lint's exit status is a bit mask: 2 errors, 4 warnings, 8 informational; 1 is a crash.
    assert result.returncode & 1 == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if ":E" in line] if result.returncode & 2 else []


def test_the_packaged_sam_template_passes_cfn_lint_without_errors(packaged):
    assert lint_errors(cfn_lint(packaged)) == []


def test_the_cloudformation_sam_translates_it_to_passes_cfn_lint_without_errors(cloudformation, tmp_path):
    path = tmp_path / "cloudformation.json"
    path.write_text(json.dumps(cloudformation))
    assert lint_errors(cfn_lint(path)) == []


def test_the_merge_adds_no_resource_of_its_own_by_a_wrong_name(sam):
    # A merge key that misses chalice's logical id leaves a resource with no Type.
    assert [name for name, resource in sam["Resources"].items() if "Type" not in resource] == []
    intrinsics = []

    def walk(value, where):
        if isinstance(value, dict):
            keys = [key for key in value if key.startswith("Fn::") or key == "Ref"]
            if keys and len(value) > 1:
                intrinsics.append(where)  # two merged intrinsics in one object
            for key, inner in value.items():
                walk(inner, f"{where}.{key}")
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                walk(inner, f"{where}[{index}]")

    walk(sam["Resources"], "Resources")
    assert intrinsics == []


def sqs_mappings(template: dict) -> dict:
    return {name: m for name, m in of_type(template, "AWS::Lambda::EventSourceMapping").items()
            if "Fn::Sub" in m["Properties"]["EventSourceArn"]}


def test_every_sqs_handler_gets_a_mapping_that_reports_batch_item_failures_with_a_concurrency_cap(
        cloudformation, app):
    mappings = sqs_mappings(cloudformation)
    by_function = {m["Properties"]["FunctionName"]["Ref"]: m["Properties"] for m in mappings.values()}
    handlers = [source for source in app.event_sources if isinstance(source, SQSEventConfig)]
    assert set(by_function) == {cfn_name(source.name) for source in handlers}
    for source in handlers:
        mapping = by_function[cfn_name(source.name)]
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"], source.name
        assert mapping["ScalingConfig"] == {
            "MaximumConcurrency": source.maximum_concurrency or DEFAULT_MAXIMUM_CONCURRENCY}, source.name
        assert mapping["BatchSize"] == source.batch_size
        assert mapping["EventSourceArn"]["Fn::Sub"].endswith(f":{source.queue}")


def test_every_stream_handler_reads_its_tables_real_stream_and_reports_batch_item_failures(cloudformation, app):
    from infra.runtime.stream_batch import table_of

    tables = {t["Properties"]["TableName"]: name for name, t in of_type(cloudformation, "AWS::DynamoDB::Table").items()}
    streams = {name: m["Properties"] for name, m in of_type(cloudformation, "AWS::Lambda::EventSourceMapping").items()
               if "Fn::GetAtt" in m["Properties"]["EventSourceArn"]}
    handlers = [source for source in app.event_sources if isinstance(source, DynamoDBEventConfig)]
    assert handlers and len(streams) == len(handlers)
    by_function = {m["FunctionName"]["Ref"]: (name, m) for name, m in streams.items()}
    for source in handlers:
        name, mapping = by_function[cfn_name(source.name)]
        table = tables[table_of(source.stream_arn)]
        # The decorator can only say /stream/*; the template names the table's real stream.
        assert mapping["EventSourceArn"] == {"Fn::GetAtt": [table, "StreamArn"]}
        assert table in _depends_on(cloudformation, name)
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["BisectBatchOnFunctionError"] is False  # a bisected batch would be written under other keys
        assert mapping["StartingPosition"] == source.starting_position == "TRIM_HORIZON"
        assert mapping["BatchSize"] == source.batch_size
        assert mapping["MaximumBatchingWindowInSeconds"] == source.maximum_batching_window_in_seconds
        stream = of_type(cloudformation, "AWS::DynamoDB::Table")[table]["Properties"]["StreamSpecification"]
        assert stream == {"StreamViewType": "NEW_IMAGE"}


def _queue_resource(template: dict, queue_name: str) -> dict:
    [queue] = [q for q in of_type(template, "AWS::SQS::Queue").values()
               if q["Properties"]["QueueName"] == queue_name]
    return queue["Properties"]


def test_every_queue_a_function_reads_outlasts_six_of_its_timeouts(cloudformation):
    functions = of_type(cloudformation, "AWS::Lambda::Function")
    for mapping in sqs_mappings(cloudformation).values():
        properties = mapping["Properties"]
        timeout = functions[properties["FunctionName"]["Ref"]]["Properties"]["Timeout"]
        queue = _queue_resource(cloudformation, properties["EventSourceArn"]["Fn::Sub"].rsplit(":", 1)[1])
        needed = VISIBILITY_FACTOR * timeout + properties.get("MaximumBatchingWindowInSeconds", 0)
        assert queue["VisibilityTimeout"] >= needed, (queue["QueueName"], queue["VisibilityTimeout"], needed)


def _references(value) -> set[str]:
    if isinstance(value, dict):
        found = set()
        if "Ref" in value:
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else target.split(".")[0])
        for inner in value.values():
            found |= _references(inner)
        return found
    if isinstance(value, list):
        return set().union(*map(_references, value)) if value else set()
    return set()


def _depends_on(template: dict, name: str) -> set[str]:
    """Every resource CloudFormation must create before `name`."""
    resources = template["Resources"]
    seen, todo = set(), [name]
    while todo:
        resource = resources[todo.pop()]
        direct = _references(resource.get("Properties", {}))
        depends = resource.get("DependsOn", [])
        direct |= set([depends] if isinstance(depends, str) else depends)
        for other in direct & set(resources) - seen:
            seen.add(other)
            todo.append(other)
    return seen


def test_cloudformation_creates_each_queue_before_the_mapping_that_reads_it(cloudformation):
    # Lambda refuses a mapping for a queue that does not exist yet, and
    # CloudFormation runs what nothing orders in parallel.
    queue_ids = {q["Properties"]["QueueName"]: name for name, q in of_type(cloudformation, "AWS::SQS::Queue").items()}
    for name, mapping in sqs_mappings(cloudformation).items():
        queue = mapping["Properties"]["EventSourceArn"]["Fn::Sub"].rsplit(":", 1)[1]
        assert queue_ids[queue] in _depends_on(cloudformation, name), name


def test_the_schedules_are_deployed_at_their_rates(cloudformation, app):
    rules = [r["Properties"]["ScheduleExpression"] for r in of_type(cloudformation, "AWS::Events::Rule").values()]
    schedules = [s.schedule_expression for s in app.event_sources if isinstance(s, ScheduledEventConfig)]
    expected = [s if isinstance(s, str) else s.to_string() for s in schedules]
    assert sorted(rules) == sorted(expected) and expected


def test_roles_allow_named_actions_on_pacers_own_resources_and_nothing_else(cloudformation):
    roles = of_type(cloudformation, "AWS::IAM::Role")
    assert len(roles) == len(of_type(cloudformation, "AWS::Lambda::Function"))
    names = [t.name for t in declared.TABLES] + [q.name for q in declared.QUEUES]
    for role_name, role in roles.items():
        assert role["Properties"].get("ManagedPolicyArns", []) == [], role_name
        [policy] = role["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            if statement["Sid"] == "Tracing":  # X-Ray's actions take no narrower resource (see the test below)
                continue
            assert all("*" not in action for action in statement["Action"]), statement
            for resource in statement["Resource"]:
                arn = resource["Fn::Sub"]  # pinned to the stack's partition, region and account
                service = statement["Action"][0].split(":")[0]
                if service == "s3":  # bucket ARNs name no region or account; the bucket's name does
                    bucket = arn.removeprefix("arn:${AWS::Partition}:s3:::").split("/")[0]
                    assert bucket in [f"{b.name}-${{AWS::AccountId}}-${{AWS::Region}}" for b in declared.BUCKETS]
                    continue
                assert arn.startswith("arn:${AWS::Partition}:") and ":${AWS::Region}:${AWS::AccountId}:" in arn
                assert all(action.startswith(f"{service}:") for action in statement["Action"])
                if service in ("dynamodb", "sqs"):
                    resource_name = arn.rsplit(":", 1)[1].removeprefix("table/").split("/")[0]
                    assert resource_name in names, arn
        granted = json.dumps(policy)
        assert all(f":{q.name}\"" in granted for q in declared.QUEUES)
        assert all(f"table/{t.name}\"" in granted for t in declared.TABLES)


def test_functions_read_their_table_and_queue_names_from_the_resources_they_depend_on(cloudformation):
    for name, function in of_type(cloudformation, "AWS::Lambda::Function").items():
        variables = function["Properties"]["Environment"]["Variables"]
        for value in variables.values():
            assert value not in ([t.name for t in declared.TABLES] + [q.name for q in declared.QUEUES]
                                 + [b.name for b in declared.BUCKETS]), (
                f"{name}: a literal resource name leaves CloudFormation free to create the function first")


def test_the_api_takes_its_admin_token_from_a_noecho_parameter(sam):
    assert sam["Parameters"]["AdminToken"]["NoEcho"] is True
    variables = sam["Resources"][API_HANDLER]["Properties"]["Environment"]["Variables"]
    assert variables["PACER_ADMIN_TOKEN"] == {"Ref": "AdminToken"}


def test_the_committed_policy_file_is_the_generated_one():
    graph = app_graph(STAGE)
    assert graph.policy_files, "the dev stage is meant to have autogen_policy false"
    for filename in graph.policy_files:
        assert Path(filename).read_text() == policy_file_text(graph), (
            f"{filename} is stale: run `make package STAGE={STAGE}` and commit it")


# A batch or transaction call is authorised per item action (IAM has no action of its name).
ITEM_ACTIONS = {
    "dynamodb:TransactWriteItems": {"dynamodb:ConditionCheckItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                                    "dynamodb:DeleteItem"},
    "dynamodb:TransactGetItems": {"dynamodb:GetItem"},
    "sqs:SendMessageBatch": {"sqs:SendMessage"},
    "sqs:DeleteMessageBatch": {"sqs:DeleteMessage"},
    "sqs:ChangeMessageVisibilityBatch": {"sqs:ChangeMessageVisibility"},
    "s3:ListObjectsV2": {"s3:ListBucket"},
}


def test_the_policy_grants_every_dynamodb_and_sqs_call_chalicelib_makes():
    """If chalicelib starts calling, say, Scan, this fails until the generated policy allows it."""
    import re

    import botocore.session
    from botocore import xform_name

    from infra.deploy.template import DYNAMODB_ACTIONS, S3_BUCKET_ACTIONS, S3_OBJECT_ACTIONS, SQS_ACTIONS

    source = "\n".join(path.read_text() for path in (ROOT / "chalicelib").rglob("*.py"))
    called = set()
    for service in ("dynamodb", "sqs", "s3"):
        for operation in botocore.session.get_session().get_service_model(service).operation_names:
            if re.search(rf"\.{xform_name(operation)}\(", source):
                called.add(f"{service}:{operation}")
    assert "dynamodb:TransactWriteItems" in called, "the scan of chalicelib found nothing; is it still there?"
    needed = set().union(*(ITEM_ACTIONS.get(action, {action}) for action in called))
    assert "s3:PutObject" in called
    assert needed - set(DYNAMODB_ACTIONS + SQS_ACTIONS + S3_BUCKET_ACTIONS + S3_OBJECT_ACTIONS) == set()


def alarms(template: dict) -> dict[str, dict]:
    return {name: alarm["Properties"] for name, alarm in of_type(template, "AWS::CloudWatch::Alarm").items()}


def dimension(alarm: dict, name: str):
    [found] = [d["Value"] for d in alarm["Dimensions"] if d["Name"] == name]
    return found


def test_every_dead_letter_queue_alarms_on_its_first_visible_message(cloudformation):
    queues = {q["Properties"]["QueueName"]: name for name, q in of_type(cloudformation, "AWS::SQS::Queue").items()}
    dlqs = {q.dead_letter.name for q in declared.QUEUES if q.dead_letter}
    watched = {dimension(a, "QueueName")["Fn::GetAtt"][0]: a for a in alarms(cloudformation).values()
               if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"}
    assert set(watched) == {queues[name] for name in dlqs} and len(dlqs) == 2
    for alarm in watched.values():
        assert (alarm["Namespace"], alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
            "AWS/SQS", "Maximum", "GreaterThanThreshold", 0)


def test_the_jobs_queue_alarms_when_its_oldest_message_waits_too_long(cloudformation):
    [alarm] = [a for a in alarms(cloudformation).values() if a.get("MetricName") == "ApproximateAgeOfOldestMessage"]
    target = dimension(alarm, "QueueName")["Fn::GetAtt"][0]
    assert of_type(cloudformation, "AWS::SQS::Queue")[target]["Properties"]["QueueName"] == declared.JOBS_QUEUE.name
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (OLDEST_JOB_ALARM_S, "GreaterThanThreshold")


def test_every_function_alarms_on_its_error_rate_and_on_throttles(cloudformation):
    functions = set(of_type(cloudformation, "AWS::Lambda::Function"))
    found = alarms(cloudformation)
    throttled = {dimension(a, "FunctionName")["Ref"] for a in found.values() if a.get("MetricName") == "Throttles"}
    assert throttled == functions
    rates = [a for a in found.values() if "Metrics" in a]
    by_function = {}
    for alarm in rates:
        stats = {m["Id"]: m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m}
        assert {m["MetricName"] for m in stats.values()} == {"Errors", "Invocations"}
        [function] = {dimension(m, "FunctionName")["Ref"] for m in stats.values()}
        [expression] = [m for m in alarm["Metrics"] if m.get("ReturnData")]
        assert "errors / invocations" in expression["Expression"]
        by_function[function] = alarm
    assert set(by_function) == functions


def test_the_alarms_notify_the_alarm_topic_only_when_one_is_given(sam, cloudformation):
    assert sam["Parameters"][ALARM_TOPIC]["Default"] == ""
    condition = sam["Conditions"]["HasAlarmTopic"]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": ALARM_TOPIC}, ""]}]}
    for name, alarm in alarms(cloudformation).items():
        for actions in (alarm["AlarmActions"], alarm["OKActions"]):
            assert actions == {"Fn::If": ["HasAlarmTopic", [{"Ref": ALARM_TOPIC}], {"Ref": "AWS::NoValue"}]}, name


def test_every_function_is_traced_by_x_ray_and_its_role_may_write_traces(cloudformation):
    roles = of_type(cloudformation, "AWS::IAM::Role")
    for name, function in of_type(cloudformation, "AWS::Lambda::Function").items():
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}, name
        role = roles[function["Properties"]["Role"]["Fn::GetAtt"][0]]
        [policy] = role["Properties"]["Policies"]
        [tracing] = [s for s in policy["PolicyDocument"]["Statement"] if s["Sid"] == "Tracing"]
        # X-Ray's write actions have no resource-level permissions: "*" is the only resource they take.
        assert (tracing["Action"], tracing["Resource"]) == (XRAY_ACTIONS, "*")
