"""The benchmarks' AWS call meter: each call through a metered session is counted once, per process file."""
import boto3

from chalicelib.aws.metering import CallMeter, read_calls


def test_every_call_through_a_metered_session_is_counted_once_by_service_and_operation(moto_aws, tmp_path):
    session = boto3.session.Session()
    meter = CallMeter(str(tmp_path))
    meter.attach(session)
    dynamodb, sqs = session.client("dynamodb"), session.client("sqs")
    dynamodb.list_tables()
    dynamodb.list_tables()
    sqs.list_queues()
    boto3.client("dynamodb").list_tables()  # another session: not counted
    meter.flush()
    assert read_calls(tmp_path) == {"dynamodb.ListTables": 2, "sqs.ListQueues": 1}


def test_with_sites_on_each_call_is_also_counted_by_the_pacer_code_that_made_it(moto_aws, tmp_path, monkeypatch):
    from chalicelib.compute.dynamo import DynamoComputeStore
    from chalicelib.resources import STATE_TABLE

    monkeypatch.setenv("PACER_AWS_CALL_SITES", "1")
    session = boto3.session.Session()
    meter = CallMeter(str(tmp_path))
    meter.attach(session)
    DynamoComputeStore(session.client("dynamodb"), STATE_TABLE.name).number("15")
    meter.flush()
    assert read_calls(tmp_path) == {"dynamodb.GetItem": 1, "dynamodb.GetItem@compute.dynamo.number": 1}
