"""The emulator's fast responses (infra/moto_patches.py) answer what moto's generic serializer answers.

In-process moto serializes each DynamoDB, SQS and streams operation the generic way; a recorder beside it asks the fast path for the
same result and context, and every answer the fast path gives must be the generic one, byte for byte once parsed.
"""
import json

import boto3
import pytest
from moto import mock_aws
from moto.core.responses import ActionResult

from infra.moto_patches import fast_response


@pytest.fixture
def answers(monkeypatch):
    """(service, operation, generic answer, fast answer) for each call the fast path would have answered."""
    pairs = []
    generic = ActionResult.execute_result

    def recording(self, context):
        answer = generic(self, context)
        fast = fast_response(self.result, context)
        if fast is not None:
            model = context.operation_model
            pairs.append((model.service_model.service_name, model.name, answer, fast))
        return answer

    monkeypatch.setattr(ActionResult, "execute_result", recording)
    with mock_aws():
        yield pairs


def test_the_fast_sqs_answers_are_the_generic_serializers(answers):
    sqs = boto3.client("sqs", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.get_queue_url(QueueName="q")
    sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    sqs.send_message(QueueUrl=url, MessageBody="one", MessageAttributes={
        "kind": {"DataType": "String", "StringValue": "job"}, "n": {"DataType": "Number", "StringValue": "3"}})
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"body {i}"} for i in range(3)])
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                   MessageSystemAttributeNames=["All"])["Messages"]
    assert sorted(m["Body"] for m in received) == ["body 0", "body 1", "body 2", "one"]
    assert next(m for m in received if m["Body"] == "one")["MessageAttributes"]["kind"]["StringValue"] == "job"
    sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)  # nothing left to receive
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"], VisibilityTimeout=5)
    sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
        {"Id": "a", "ReceiptHandle": received[1]["ReceiptHandle"], "VisibilityTimeout": 5},
        {"Id": "b", "ReceiptHandle": "not-a-handle", "VisibilityTimeout": 5}])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"])
    sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                    for i, m in enumerate(received[1:])])
    # A binary attribute is not JSON's: the generic serializer encodes it, so the fast path leaves it alone.
    sqs.send_message(QueueUrl=url, MessageBody="binary",
                     MessageAttributes={"raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}})
    binary = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"])["Messages"]
    assert binary[0]["MessageAttributes"]["raw"]["BinaryValue"] == b"\x00\x01"

    answered = [name for _, name, _, _ in answers]
    assert {"GetQueueUrl", "GetQueueAttributes", "SendMessage", "SendMessageBatch", "ReceiveMessage",
            "ChangeMessageVisibilityBatch", "DeleteMessageBatch"} <= set(answered)
    assert answered.count("ReceiveMessage") == 2  # with messages and empty; not the binary one
    same_answers(answers)


def same_answers(answers):
    for _, name, (status, headers, body), (fast_status, fast_headers, fast_body) in answers:
        assert (fast_status, fast_headers["Content-Type"]) == (status, headers["Content-Type"]), name
        assert json.loads(fast_body) == json.loads(body), name


def test_the_fast_stream_records_are_the_generic_serializers(answers):
    db = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    # botocore's own endpoint for streams is one moto's in-process mock does not route; the classic one it does.
    streams = boto3.client("dynamodbstreams", region_name="us-east-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing",
                           endpoint_url="https://streams.dynamodb.us-east-1.amazonaws.com")
    arn = db.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST",
                          StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
                          )["TableDescription"]["LatestStreamArn"]
    db.put_item(TableName="t", Item={"pk": {"S": "a"}, "n": {"N": "1.5"}, "l": {"L": [{"S": "x"}, {"BOOL": True}]},
                                     "m": {"M": {"k": {"NULL": True}}}, "ss": {"SS": ["p", "q"]}})
    db.update_item(TableName="t", Key={"pk": {"S": "a"}}, UpdateExpression="SET n = :n",
                   ExpressionAttributeValues={":n": {"N": "2"}})
    db.delete_item(TableName="t", Key={"pk": {"S": "a"}})
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    assert records[1]["dynamodb"]["OldImage"]["n"] == {"N": "1.5"}
    assert records[0]["dynamodb"]["ApproximateCreationDateTime"].year >= 2026
    # A binary attribute in an image is encoded by the generic serializer: the fast path leaves that record alone.
    db.put_item(TableName="t", Item={"pk": {"S": "b"}, "raw": {"B": b"\x00\x01"}})
    binary = streams.get_records(ShardIterator=iterator)["Records"]
    assert binary[-1]["dynamodb"]["NewImage"]["raw"] == {"B": b"\x00\x01"}

    assert [name for service, name, _, _ in answers if service == "dynamodbstreams"] == ["GetShardIterator",
                                                                                         "GetRecords"]
    same_answers(answers)


def test_the_fast_item_answers_are_the_generic_serializers(answers):
    db = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    db.create_table(TableName="t", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                              {"AttributeName": "sk", "KeyType": "RANGE"}],
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                          {"AttributeName": "sk", "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST")
    item = {"pk": {"S": "p"}, "sk": {"S": "1"}, "n": {"N": "12.50"}, "ns": {"NS": ["1", "2.5"]},
            "l": {"L": [{"S": "x"}, {"BOOL": True}, {"M": {"at": {"NULL": True}}}]}}
    db.put_item(TableName="t", Item=item)
    db.put_item(TableName="t", Item={**item, "sk": {"S": "2"}}, ReturnValues="ALL_OLD")
    assert db.get_item(TableName="t", Key={"pk": {"S": "p"}, "sk": {"S": "1"}})["Item"]["n"] == {"N": "12.50"}
    db.update_item(TableName="t", Key={"pk": {"S": "p"}, "sk": {"S": "1"}}, UpdateExpression="ADD n :one",
                   ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="ALL_NEW")
    page = db.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}},
                    Limit=1)
    assert page["LastEvaluatedKey"] == {"pk": {"S": "p"}, "sk": {"S": "1"}}
    db.batch_get_item(RequestItems={"t": {"Keys": [{"pk": {"S": "p"}, "sk": {"S": "2"}}]}})
    db.transact_write_items(TransactItems=[{"Delete": {"TableName": "t", "Key": {"pk": {"S": "p"}, "sk": {"S": "2"}}}}])
    # A binary attribute is encoded by the generic serializer: the fast path leaves that answer alone.
    db.put_item(TableName="t", Item={"pk": {"S": "b"}, "sk": {"S": "1"}, "raw": {"B": b"\x00\x01"}})
    raw = db.get_item(TableName="t", Key={"pk": {"S": "b"}, "sk": {"S": "1"}})["Item"]["raw"]
    assert raw == {"B": b"\x00\x01"}

    assert [name for _, name, _, _ in answers] == ["PutItem", "PutItem", "GetItem", "UpdateItem", "Query",
                                                "BatchGetItem", "TransactWriteItems", "PutItem"]
    same_answers(answers)


def _dynamodb_scenario() -> list:
    """Conditions and update expressions, each text sent again with other values, passing and failing, and
    refused ones: every answer (or error code and cancellation reasons) and the table's items at the end."""
    from botocore.exceptions import ClientError

    db = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    db.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                          {"AttributeName": "sk", "AttributeType": "S"}])
    answers: list = []

    def call(operation, **request):
        try:
            answer = getattr(db, operation)(**request)
            answers.append((operation, answer.get("Attributes"), answer.get("Items")))
        except ClientError as error:
            answers.append((operation, error.response["Error"]["Code"], error.response["Error"]["Message"],
                            error.response.get("CancellationReasons")))

    def key(sk):
        return {"pk": {"S": "a"}, "sk": {"S": sk}}

    for i in range(3):
        call("put_item", TableName="t", Item={**key(str(i)), "n": {"N": str(i)}},
             ConditionExpression="attribute_not_exists(pk)")
    call("put_item", TableName="t", Item=key("0"), ConditionExpression="attribute_not_exists(pk)")  # fails
    for i in range(3):  # the third fails its condition: n reached 2
        call("update_item", TableName="t", Key=key("0"), ReturnValues="ALL_NEW",
             UpdateExpression="SET #s = :s, n = n + :one ADD c :one", ConditionExpression="n < :max",
             ExpressionAttributeNames={"#s": "status"},
             ExpressionAttributeValues={":s": {"S": f"v{i}"}, ":one": {"N": "1"}, ":max": {"N": "2"}})
    for word in ("x", "y"):
        call("update_item", TableName="t", Key=key("1"), ReturnValues="ALL_NEW",
             UpdateExpression="SET l = list_append(if_not_exists(l, :empty), :item)",
             ExpressionAttributeValues={":empty": {"L": []}, ":item": {"L": [{"S": word}]}})
    call("update_item", TableName="t", Key=key("0"), UpdateExpression="REMOVE c", ReturnValues="ALL_NEW")
    for i in range(2):  # maps, list indexes, sets, arithmetic on a default, and removals, twice
        call("update_item", TableName="t", Key=key("3"), ReturnValues="ALL_NEW",
             UpdateExpression="SET m = if_not_exists(m, :map), counted = if_not_exists(counted, :zero) + :one "
                              "ADD tags :tags",
             ExpressionAttributeValues={":map": {"M": {"k": {"L": [{"S": "first"}, {"S": "second"}]}}},
                                        ":zero": {"N": "0"}, ":one": {"N": "1"}, ":tags": {"SS": [f"t{i}", "t"]}})
        call("update_item", TableName="t", Key=key("3"), ReturnValues="ALL_NEW",
             UpdateExpression="SET m.#k[0] = :word, m.extra = :word REMOVE m.#k[1] DELETE tags :gone",
             ExpressionAttributeNames={"#k": "k"},
             ExpressionAttributeValues={":word": {"S": f"w{i}"}, ":gone": {"SS": ["t"]}})
    for values in ({":v": {"N": "9"}, ":unused": {"N": "1"}}, {":v": {"N": "9"}}):  # the first is refused
        call("update_item", TableName="t", Key=key("2"), UpdateExpression="SET n = :v",
             ConditionExpression="attribute_exists(n)", ExpressionAttributeValues=values, ReturnValues="ALL_NEW")
    for refused, values in (("SET n = :v, n = :v", {":v": {"N": "1"}}),  # overlapping paths
                            ("SET n = :v SET c = :v", {":v": {"N": "1"}}),  # two SET clauses
                            ("SET absent.deeper = :v", {":v": {"N": "1"}}),  # a path through a missing map
                            ("SET sk = :v", {":v": {"S": "1"}}),  # the key
                            ("SET n = n + :s", {":s": {"S": "x"}})):  # arithmetic on a string
        call("update_item", TableName="t", Key=key("2"), UpdateExpression=refused, ExpressionAttributeValues=values)
    for sk in ("2", "9"):  # the first is cancelled by its put, the second commits
        call("transact_write_items", TransactItems=[
            {"Put": {"TableName": "t", "Item": key(sk), "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Update": {"TableName": "t", "Key": key("1"), "UpdateExpression": "ADD n :one",
                        "ConditionExpression": "attribute_exists(pk)", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Delete": {"TableName": "t", "Key": key("nothing"), "ConditionExpression": "attribute_not_exists(pk)"}}])
    for least in ("1", "2"):
        call("query", TableName="t", KeyConditionExpression="pk = :pk", FilterExpression="n >= :least",
             ExpressionAttributeValues={":pk": {"S": "a"}, ":least": {"N": least}})
    answers.append(("scan", sorted(map(str, db.scan(TableName="t")["Items"]))))
    return answers


def test_expressions_parsed_once_per_text_answer_as_moto_parsing_each_time(monkeypatch):
    from moto.dynamodb import comparisons
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb import responses as dynamodb_responses
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    from infra.moto_patches import _cache_expression_parses

    parses = []
    moto_parse = comparisons.ConditionExpressionParser.parse
    monkeypatch.setattr(comparisons.ConditionExpressionParser, "parse",
                        lambda self: parses.append(1) or moto_parse(self))
    with mock_aws():
        each_time = _dynamodb_scenario()
    parsed_each_time, parses[:] = len(parses), []

    for module in (comparisons, dynamodb_models, dynamodb_responses):  # put back after the test
        monkeypatch.setattr(module, "create_condition_expression_parser", module.create_condition_expression_parser)
    monkeypatch.setattr(UpdateExpressionParser, "make", UpdateExpressionParser.__dict__["make"])
    _cache_expression_parses()
    with mock_aws():
        once_per_text = _dynamodb_scenario()

    assert once_per_text == each_time
    assert [answer[1] for answer in each_time[3:4]] == ["ConditionalCheckFailedException"]  # the scenario's failures
    assert "ValidationException" in [answer[1] for answer in each_time]
    assert len(parses) < parsed_each_time / 2, (len(parses), parsed_each_time)  # the kept parses were used


def test_update_checks_without_per_node_overheads_answer_as_motos(monkeypatch):
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser

    from infra.moto_patches import _fast_update_checks

    with mock_aws():
        motos = _dynamodb_scenario()
    monkeypatch.setattr(DepthFirstTraverser, "traverse", DepthFirstTraverser.traverse)  # put back after the test
    monkeypatch.setattr(validators, "deepcopy", validators.deepcopy)
    _fast_update_checks()
    assert DepthFirstTraverser.traverse._pacer_patched
    with mock_aws():
        assert _dynamodb_scenario() == motos


def test_results_converted_by_exact_class_answer_as_motos(monkeypatch):
    from datetime import datetime, timezone

    from moto.dynamodb import responses
    from moto.dynamodb.models.dynamo_type import DynamoType

    from infra.moto_patches import _fast_dynamo_results

    motos = responses.dynamo_to_dict
    with mock_aws():
        scenario = _dynamodb_scenario()
    monkeypatch.setattr(responses, "dynamo_to_dict", motos)  # put back after the test
    _fast_dynamo_results()
    fast = responses.dynamo_to_dict
    assert fast is not motos and fast._pacer_patched
    values = [DynamoType({"M": {"s": {"S": "x"}, "n": {"N": "1.5"}, "b": {"BOOL": False}, "z": {"NULL": True},
                                "l": {"L": [{"S": "y"}, {"M": {"raw": {"B": "AAE="}}}, {"BS": ["AAE="]}]},
                                "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]}}}),
              {"Items": [{"pk": DynamoType({"S": "p"})}], "Count": 1, "LastEvaluatedKey": {"pk": {"S": "p"}}},
              [datetime(2026, 11, 28, tzinfo=timezone.utc), None, 3, 2.5, "text"]]
    for value in values:
        assert fast(value) == motos(value), value
    with mock_aws():
        assert _dynamodb_scenario() == scenario


def test_an_items_attributes_are_converted_without_falling_back_to_motos_checks(monkeypatch):
    from moto.dynamodb import responses
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict

    from infra.moto_patches import _fast_dynamo_results

    motos, fallbacks = responses.dynamo_to_dict, []

    def counted(value):
        fallbacks.append(value)
        return motos(value)
    monkeypatch.setattr(responses, "dynamo_to_dict", counted)  # what the fast path falls back to
    _fast_dynamo_results()
    fast = responses.dynamo_to_dict
    # An item's attributes, as moto's Query hands them to the response: a LimitedSizeDict, not a dict.
    attrs = LimitedSizeDict({"id": DynamoType({"S": "j-1"}), "n": DynamoType({"N": "3"}),
                             "timeline": DynamoType({"L": [{"M": {"at": {"N": "1.5"}}}]})})
    assert fast({"Items": [attrs]}) == motos({"Items": [attrs]})
    assert fallbacks == []


def test_requests_read_with_json_loads_are_what_motos_parser_reads(monkeypatch):
    from moto.dynamodb.responses import DynamoHandler

    from infra.moto_patches import fast_request_params

    pairs = []
    generic = DynamoHandler.parse_parameters

    def recording(self, request):
        generic(self, request)
        pairs.append((fast_request_params(request.data), self.params))

    monkeypatch.setattr(DynamoHandler, "parse_parameters", recording)
    with mock_aws():
        _dynamodb_scenario()
        db = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
        nested = {"M": {"n": {"N": "1.5"}, "t": {"BOOL": True}, "z": {"NULL": True}, "ss": {"SS": ["a", "b"]},
                        "l": {"L": [{"S": "x"}, {"NS": ["1", "2"]}]}, "quote": {"S": 'say "B": no'}}}
        db.transact_write_items(TransactItems=[
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}, "sk": {"S": str(i)}, "v": nested}}} for i in range(3)])
        db.query(TableName="t", KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": "b"}},
                 Limit=2, ConsistentRead=True)
        db.put_item(TableName="t", Item={"pk": {"S": "c"}, "sk": {"S": "0"}, "raw": {"B": b"\x00\x01"}})
    read_fast = [(fast, params) for fast, params in pairs if fast is not None]
    assert len(read_fast) >= 20 and len(read_fast) == len(pairs) - 1
    assert all(fast == params for fast, params in read_fast)
    (binary,) = [params for fast, params in pairs if fast is None]  # decoded by moto's parser: bytes
    assert binary["Item"]["raw"]["B"] == b"\x00\x01"


def test_an_item_sized_once_is_the_item_moto_builds_and_refused_where_moto_refuses_it(monkeypatch):
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    from infra.moto_patches import ITEM_SIZE_LIMIT, _size_items_once

    motos = Item.__init__
    monkeypatch.setattr(Item, "__init__", motos)  # put back after the test
    timeline = {"L": [{"M": {"status": {"S": "pending"}, "at": {"N": "1.5"}, "note": {"NULL": True}}}] * 3}
    attrs = {"id": {"S": "j-1"}, "n": {"N": "3"}, "ok": {"BOOL": True}, "tags": {"SS": ["a", "b"]},
             "timeline": timeline, "payload": {"M": {"to": {"S": "ann@example.com"}}}}
    built = Item(DynamoType({"S": "j-1"}), None, attrs)
    _size_items_once()
    assert Item.__init__ is not motos
    fast = Item(DynamoType({"S": "j-1"}), None, attrs)
    assert fast == built and fast.attrs == built.attrs and type(fast.attrs) is type(built.attrs)
    # At the limit both build it; a byte past it, both refuse it.
    for extra, refused in ((0, False), (1, True)):
        padding = ITEM_SIZE_LIMIT + extra - sum(len(k) + DynamoType(v).size() for k, v in attrs.items()) - len("pad")
        big = {**attrs, "pad": {"S": "x" * padding}}
        for init in (motos, Item.__init__):
            item = Item.__new__(Item)
            if refused:
                with pytest.raises(ItemSizeTooLarge):
                    init(item, DynamoType({"S": "j-1"}), None, big)
            else:
                init(item, DynamoType({"S": "j-1"}), None, big)
                assert item.attrs["pad"] == DynamoType({"S": "x" * padding})


def test_a_messages_retention_checked_without_the_queue_attributes_is_motos_answer(monkeypatch):
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import SQSBackend, sqs_backends

    from infra.moto_patches import _retention_without_attributes

    motos = SQSBackend.is_message_valid_based_on_retention_period
    monkeypatch.setattr(SQSBackend, "is_message_valid_based_on_retention_period", motos)  # put back after the test
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="kept-a-minute", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="hello")
        backend = sqs_backends["123456789012"]["us-east-1"]
        (message,) = backend.queues["kept-a-minute"]._messages
        sent_ages_s = (0, 59, 61, 3600)
        answers = []
        for age in sent_ages_s:
            message.sent_timestamp = int(unix_time_millis()) - age * 1000
            answers.append(motos(backend, "kept-a-minute", message))
        _retention_without_attributes()
        assert SQSBackend.is_message_valid_based_on_retention_period is not motos
        fast = []
        for age in sent_ages_s:
            message.sent_timestamp = int(unix_time_millis()) - age * 1000
            fast.append(backend.is_message_valid_based_on_retention_period("kept-a-minute", message))
        assert answers == fast == [True, True, False, False]
