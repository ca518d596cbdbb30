"""The embedded emulator process, with its TransactWriteItems patch, keeps DynamoDB's all-or-nothing rule."""
import boto3
import pytest
from botocore.exceptions import ClientError

from infra.emulator import start_emulator


@pytest.fixture(scope="module")
def dynamodb():
    emulator = start_emulator()
    client = boto3.client("dynamodb", endpoint_url=emulator.endpoint_url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_table(TableName="t", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")
    yield client
    emulator.stop()


def put(id_, value="v"):
    return {"Put": {"TableName": "t", "Item": {"id": {"S": id_}, "value": {"S": value}},
                    "ConditionExpression": "attribute_not_exists(id)"}}


def test_a_cancelled_transaction_leaves_every_item_as_it_was(dynamodb):
    dynamodb.put_item(TableName="t", Item={"id": {"S": "old"}, "n": {"N": "1"}})
    dynamodb.put_item(TableName="t", Item={"id": {"S": "taken"}})
    bump = {"Update": {"TableName": "t", "Key": {"id": {"S": "old"}}, "UpdateExpression": "ADD n :one",
                       "ExpressionAttributeValues": {":one": {"N": "1"}}}}
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(TransactItems=[put("new"), bump, put("taken")])
    reasons = [r["Code"] for r in raised.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "ConditionalCheckFailed"]
    assert "Item" not in dynamodb.get_item(TableName="t", Key={"id": {"S": "new"}})
    assert dynamodb.get_item(TableName="t", Key={"id": {"S": "old"}})["Item"]["n"] == {"N": "1"}


def test_a_transaction_that_passes_applies_every_item(dynamodb):
    dynamodb.transact_write_items(TransactItems=[put("a"), put("b")])
    assert all("Item" in dynamodb.get_item(TableName="t", Key={"id": {"S": k}}) for k in ("a", "b"))
