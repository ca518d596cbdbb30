"""The embedded emulator process, with its TransactWriteItems patch, keeps DynamoDB's all-or-nothing rule."""
import time

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
    dynamodb.put_item(TableName="t", Item={"id": {"S": "replaced"}, "value": {"S": "before"}})
    dynamodb.put_item(TableName="t", Item={"id": {"S": "dropped"}, "value": {"S": "kept"}})
    bump = {"Update": {"TableName": "t", "Key": {"id": {"S": "old"}}, "UpdateExpression": "ADD n :one",
                       "ExpressionAttributeValues": {":one": {"N": "1"}}}}
    overwrite = {"Put": {"TableName": "t", "Item": {"id": {"S": "replaced"}, "value": {"S": "after"}}}}
    drop = {"Delete": {"TableName": "t", "Key": {"id": {"S": "dropped"}}}}
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(TransactItems=[put("new"), bump, overwrite, drop, put("taken")])
    reasons = [r["Code"] for r in raised.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "None", "ConditionalCheckFailed"]
    assert "Item" not in dynamodb.get_item(TableName="t", Key={"id": {"S": "new"}})
    assert dynamodb.get_item(TableName="t", Key={"id": {"S": "old"}})["Item"]["n"] == {"N": "1"}
    assert dynamodb.get_item(TableName="t", Key={"id": {"S": "replaced"}})["Item"]["value"] == {"S": "before"}
    assert dynamodb.get_item(TableName="t", Key={"id": {"S": "dropped"}})["Item"]["value"] == {"S": "kept"}


def test_a_transaction_that_passes_applies_every_item(dynamodb):
    dynamodb.transact_write_items(TransactItems=[put("a"), put("b")])
    assert all("Item" in dynamodb.get_item(TableName="t", Key={"id": {"S": k}}) for k in ("a", "b"))


def test_a_query_reads_its_partition_in_order_with_limits_pages_and_filters(dynamodb):
    # The emulator answers base-table queries from one partition (moto_patches._patch_partition_queries).
    dynamodb.create_table(TableName="ranged", BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                {"AttributeName": "sk", "AttributeType": "S"}])
    for pk in ("a", "b", "c"):
        for i in range(30):
            dynamodb.put_item(TableName="ranged", Item={"pk": {"S": pk}, "sk": {"S": f"{i:03d}"}, "n": {"N": str(i)}})

    def query(values=None, **kwargs):
        items, page = [], {}
        while True:
            found = dynamodb.query(TableName="ranged", KeyConditionExpression="pk = :pk",
                                   ExpressionAttributeValues={":pk": {"S": "b"}, **(values or {})},
                                   **kwargs, **page)
            items += [(i["pk"]["S"], i["sk"]["S"]) for i in found["Items"]]
            if "LastEvaluatedKey" not in found:
                return items
            page = {"ExclusiveStartKey": found["LastEvaluatedKey"]}

    expected = [("b", f"{i:03d}") for i in range(30)]
    assert query() == expected
    assert query(Limit=7) == expected
    assert query(ScanIndexForward=False, Limit=4) == expected[::-1]
    assert query(FilterExpression="n >= :ten", values={":ten": {"N": "10"}}) == expected[10:]
    assert query(FilterExpression="n >= :ten", values={":ten": {"N": "10"}}, Limit=5) == expected[10:]
    found = dynamodb.query(TableName="ranged", KeyConditionExpression="pk = :pk AND sk > :sk", Limit=3,
                           ExpressionAttributeValues={":pk": {"S": "b"}, ":sk": {"S": "020"}})
    assert [i["sk"]["S"] for i in found["Items"]] == ["021", "022", "023"] and "LastEvaluatedKey" in found
    last = dynamodb.query(TableName="ranged", KeyConditionExpression="pk = :pk", Limit=30,
                          ExpressionAttributeValues={":pk": {"S": "b"}})
    assert len(last["Items"]) == 30
    assert dynamodb.query(TableName="ranged", KeyConditionExpression="pk = :pk",
                          ExpressionAttributeValues={":pk": {"S": "zzz"}})["Items"] == []
    assert dynamodb.scan(TableName="ranged")["Count"] == 90  # an unknown partition was not created by the query


def test_an_index_query_reads_its_partition_in_the_index_order_with_pages_and_filters(dynamodb):
    # The emulator answers GSI queries from one partition too (moto_patches._index_partition).
    dynamodb.create_table(TableName="indexed", BillingMode="PAY_PER_REQUEST",
                          KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"}
                                                for name in ("id", "colour", "rank")],
                          GlobalSecondaryIndexes=[{"IndexName": "by-colour", "Projection": {"ProjectionType": "ALL"},
                                                   "KeySchema": [{"AttributeName": "colour", "KeyType": "HASH"},
                                                                 {"AttributeName": "rank", "KeyType": "RANGE"}]}])
    for i in range(60):
        item = {"id": {"S": f"i{i:03d}"}, "colour": {"S": ("red", "blue", "green")[i % 3]}, "n": {"N": str(i)}}
        if i != 3:  # no range key: not in the index
            item["rank"] = {"S": f"{(i * 37) % 60:03d}"}
        dynamodb.put_item(TableName="indexed", Item=item)

    def query(values=None, **kwargs):
        items, page = [], {}
        while True:
            found = dynamodb.query(TableName="indexed", IndexName="by-colour", KeyConditionExpression="colour = :c",
                                   ExpressionAttributeValues={":c": {"S": "red"}, **(values or {})}, **kwargs, **page)
            items += [i["id"]["S"] for i in found["Items"]]
            if "LastEvaluatedKey" not in found:
                return items
            page = {"ExclusiveStartKey": found["LastEvaluatedKey"]}

    expected = [f"i{i:03d}" for i in sorted((i for i in range(0, 60, 3) if i != 3), key=lambda i: (i * 37) % 60)]
    assert query() == expected
    assert query(Limit=4) == expected
    assert query(ScanIndexForward=False, Limit=6) == expected[::-1]
    assert query(FilterExpression="n >= :ten", values={":ten": {"N": "30"}}, Limit=5) == [
        i for i in expected if int(i[1:]) >= 30]
    # The partition is kept between queries until the table is written, by any write: each shows at once.
    dynamodb.update_item(TableName="indexed", Key={"id": {"S": expected[0]}}, UpdateExpression="SET colour = :b",
                         ExpressionAttributeValues={":b": {"S": "blue"}})
    expected = expected[1:]
    assert query(Limit=4) == expected
    dynamodb.put_item(TableName="indexed", Item={"id": {"S": "new"}, "colour": {"S": "red"}, "rank": {"S": "000"}})
    expected = ["new"] + expected
    assert query(Limit=5) == expected
    dynamodb.transact_write_items(TransactItems=[{"Delete": {"TableName": "indexed", "Key": {"id": {"S": "new"}}}}])
    expected = expected[1:]
    assert query(ScanIndexForward=False, Limit=3) == expected[::-1]
    dynamodb.batch_write_item(RequestItems={"indexed": [{"DeleteRequest": {"Key": {"id": {"S": expected[-1]}}}}]})
    dynamodb.delete_item(TableName="indexed", Key={"id": {"S": expected[-2]}})
    assert query(Limit=4) == expected[:-2]


def test_a_cancelled_transaction_leaves_nothing_in_the_tables_stream():
    """DynamoDB streams only what a transaction commits; moto streamed a cancelled one's puts and rollback."""
    emulator = start_emulator()
    try:
        kw = dict(endpoint_url=emulator.endpoint_url, region_name="us-east-1", aws_access_key_id="testing",
                  aws_secret_access_key="testing")
        client, streams = boto3.client("dynamodb", **kw), boto3.client("dynamodbstreams", **kw)
        client.create_table(TableName="s", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST",
                            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
        item = lambda id_: {"Put": {"TableName": "s", "Item": {"id": {"S": id_}},  # noqa: E731
                                    "ConditionExpression": "attribute_not_exists(id)"}}
        client.transact_write_items(TransactItems=[item("a"), item("b")])
        with pytest.raises(ClientError):
            client.transact_write_items(TransactItems=[item("c"), item("b")])
        client.transact_write_items(TransactItems=[item("c")])
        arn = client.describe_table(TableName="s")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
        assert [(r["eventName"], r["dynamodb"]["Keys"]["id"]["S"]) for r in records] == [
            ("INSERT", "a"), ("INSERT", "b"), ("INSERT", "c")]
        sequences = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
        assert sequences == sorted(set(sequences))
    finally:
        emulator.stop()


def test_items_of_every_attribute_type_come_back_exactly_as_stored(dynamodb):
    # Item responses skip moto's generic serializer (moto_patches._fast_responses); a binary value takes it.
    item = {"id": {"S": "every-type"}, "s": {"S": "ünï ☃"}, "n": {"N": "12.50"}, "big": {"N": "123456789012345678901234567890"},
            "yes": {"BOOL": True}, "none": {"NULL": True}, "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]},
            "l": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"at": {"N": "1.25"}}}]}, "m": {"M": {"k": {"L": []}}}}
    binary = {"id": {"S": "binary"}, "b": {"B": b"\x00\xffraw"}, "bs": {"BS": [b"\x01", b"\x02"]}}
    assert dynamodb.put_item(TableName="t", Item=item, ReturnValues="ALL_OLD").get("Attributes") is None
    dynamodb.put_item(TableName="t", Item=binary)
    sets = lambda found: {k: ({t: sorted(v)} if t in ("SS", "NS", "BS") else {t: v}) for k, v in found.items()
                          for t, v in v.items()}
    assert sets(dynamodb.get_item(TableName="t", Key={"id": item["id"]}, ConsistentRead=True)["Item"]) == sets(item)
    assert sets(dynamodb.get_item(TableName="t", Key={"id": binary["id"]})["Item"]) == sets(binary)
    [queried] = dynamodb.query(TableName="t", KeyConditionExpression="id = :id",
                               ExpressionAttributeValues={":id": item["id"]}, ReturnConsumedCapacity="TOTAL")["Items"]
    assert sets(queried) == sets(item)
    updated = dynamodb.update_item(TableName="t", Key={"id": item["id"]}, UpdateExpression="SET n = :n",
                                   ExpressionAttributeValues={":n": {"N": "7"}}, ReturnValues="ALL_NEW")["Attributes"]
    assert sets(updated) == sets({**item, "n": {"N": "7"}})


def test_a_long_poll_returns_a_delayed_message_when_it_becomes_visible_not_at_the_polls_next_turn():
    # moto_patches._wake_long_polls: moto woke a waiting poll only on a send, so a message whose delay ran out during
    # a poll came with the poll's next one-second turn: here half a second after it became visible.
    emulator = start_emulator()
    try:
        sqs = boto3.client("sqs", endpoint_url=emulator.endpoint_url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        url = sqs.create_queue(QueueName="delayed")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
        visible_at = time.monotonic() + 1
        time.sleep(0.5)
        messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5).get("Messages", [])
        late = time.monotonic() - visible_at
        assert [m["Body"] for m in messages] == ["later"]
        assert late < 0.35, f"delivered {late:.2f} s after it became visible"
    finally:
        emulator.stop()


def test_one_connection_carries_many_requests_even_sent_back_to_back(dynamodb):
    # werkzeug closes every connection, since its clean-up would read the next request as leftover body; the
    # emulator's handler keeps connections open (infra/emulator_http.py). Two requests sent in one write must
    # both be answered, in order, on the same connection.
    import http.client
    import json
    import socket
    from urllib.parse import urlparse

    dynamodb.put_item(TableName="t", Item={"id": {"S": "kept"}, "value": {"S": "first"}})
    endpoint = urlparse(dynamodb.meta.endpoint_url)

    def get_item(key: str, close: bool = False) -> bytes:
        body = json.dumps({"TableName": "t", "Key": {"id": {"S": key}}}).encode()
        headers = {"Host": endpoint.netloc, "Content-Type": "application/x-amz-json-1.0",
                   "X-Amz-Target": "DynamoDB_20120810.GetItem", "Content-Length": str(len(body)),
                   "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261128/us-east-1/dynamodb/aws4_request, "
                                    "SignedHeaders=host, Signature=0"}
        if close:
            headers["Connection"] = "close"
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        return f"POST / HTTP/1.1\r\n{head}\r\n".encode() + body

    with socket.create_connection((endpoint.hostname, endpoint.port), timeout=10) as sock:
        sock.sendall(get_item("kept") + get_item("missing"))
        answers = []
        for _ in range(2):
            response = http.client.HTTPResponse(sock)
            response.begin()
            answers.append((response.status, response.will_close, json.loads(response.read())))
        assert answers == [(200, False, {"Item": {"id": {"S": "kept"}, "value": {"S": "first"}}}), (200, False, {})]
        sock.sendall(get_item("kept", close=True))
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert (response.status, response.will_close) == (200, True)
        response.read()
        assert sock.recv(1) == b""  # the server closed it, as asked
