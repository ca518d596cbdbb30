"""The billing meter behind docs/SCALING.md's costs (bench/capacity.py): DynamoDB request units as AWS counts
them, and a proxy that forwards every request unchanged while it meters."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from bench.capacity import Meter, MeteringProxy, dynamodb_units, item_size

SMALL = {"pk": {"S": "CNUM#12"}, "sk": {"S": "NUM"}}
LARGE = {"pk": {"S": "x"}, "blob": {"S": "a" * 3000}}  # about 3 KB


def test_an_item_size_adds_attribute_names_and_values():
    assert item_size({"pk": {"S": "abc"}, "n": {"N": "12345"}, "ok": {"BOOL": True}}) == 2 + 3 + 1 + 4 + 2 + 1


def test_a_transactional_write_costs_two_units_per_kilobyte_of_each_item():
    body = {"TransactItems": [{"Put": {"Item": SMALL}}, {"Put": {"Item": LARGE}},
                              {"Update": {"Key": SMALL}}, {"ConditionCheck": {"Key": SMALL}}]}
    assert dynamodb_units("TransactWriteItems", body, {}) == (2 * (1 + 3 + 1 + 1), 0)


def test_a_plain_write_costs_one_unit_per_kilobyte_and_at_least_one():
    assert dynamodb_units("PutItem", {"Item": LARGE}, {}) == (3, 0)
    assert dynamodb_units("UpdateItem", {"Key": SMALL}, {}) == (1, 0)


def test_reads_cost_a_unit_per_4_kilobytes_strongly_consistent_and_half_that_eventually():
    answer = {"Items": [LARGE, LARGE]}  # about 6 KB: two units
    assert dynamodb_units("Query", {"ConsistentRead": True}, answer) == (0, 2.0)
    assert dynamodb_units("Query", {}, answer) == (0, 1.0)
    assert dynamodb_units("GetItem", {}, {}) == (0, 0.5)  # a missing item costs the minimum


def test_a_batch_write_is_not_billed_for_the_items_it_left_unprocessed():
    body = {"RequestItems": {"t": [{"PutRequest": {"Item": SMALL}}] * 4}}
    answer = {"UnprocessedItems": {"t": [{"PutRequest": {"Item": SMALL}}]}}
    assert dynamodb_units("BatchWriteItem", body, answer) == (3, 0)


def record_dynamodb(meter: Meter, op: str, body: dict, status: int = 200, answer: dict | None = None) -> None:
    meter.record("POST", "/", {"X-Amz-Target": f"DynamoDB_20120810.{op}"}, json.dumps(body).encode(), status,
                 json.dumps(answer or {}).encode())


def test_a_failed_condition_is_billed_as_the_write_and_a_throttled_request_is_not():
    meter = Meter()
    record_dynamodb(meter, "UpdateItem", {"Key": SMALL}, 400,
                    {"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"})
    record_dynamodb(meter, "UpdateItem", {"Key": SMALL}, 400,
                    {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException"})
    assert meter.snapshot()["dynamodb.wru"] == 1


def test_the_local_runtimes_stream_checkpoints_are_counted_apart_from_pacers_writes():
    meter = Meter()
    record_dynamodb(meter, "PutItem", {"Item": {"pk": {"S": "RUNTIME#stream#f#arn"}, "sk": {"S": "shard"}}})
    record_dynamodb(meter, "PutItem", {"Item": SMALL})
    counts = meter.snapshot()
    assert (counts["dynamodb.wru"], counts["runtime.dynamodb.wru"]) == (1, 1)


def test_the_local_stacks_reads_of_the_bot_count_are_counted_apart_and_an_admins_write_of_it_is_pacers():
    meter = Meter()
    bots = {"pk": {"S": "RUNTIME#bots"}, "sk": {"S": "reference"}}
    record_dynamodb(meter, "GetItem", {"Key": bots, "ConsistentRead": True}, answer={"Item": bots})
    record_dynamodb(meter, "PutItem", {"Item": {**bots, "count": {"N": "2"}}})
    counts = meter.snapshot()
    assert (counts["runtime.dynamodb.GetItem"], counts["dynamodb.PutItem"]) == (1, 1)
    assert "dynamodb.GetItem" not in counts and "runtime.dynamodb.PutItem" not in counts


def test_sqs_batches_count_their_messages_and_a_receive_with_messages_counts_as_a_batch_handed_over():
    meter = Meter()
    send = {"QueueUrl": "http://h/1/pacer-jobs", "Entries": [{"Id": str(i)} for i in range(3)]}
    meter.record("POST", "/", {"X-Amz-Target": "AmazonSQS.SendMessageBatch"}, json.dumps(send).encode(), 200, b"{}")
    receive = json.dumps({"QueueUrl": "http://h/1/pacer-jobs"}).encode()
    meter.record("POST", "/", {"X-Amz-Target": "AmazonSQS.ReceiveMessage"}, receive, 200,
                 json.dumps({"Messages": [{}, {}]}).encode())
    meter.record("POST", "/", {"X-Amz-Target": "AmazonSQS.ReceiveMessage"}, receive, 200, b"{}")
    counts = meter.snapshot()
    assert (counts["sqs.SendMessageBatch"], counts["sqs.messages_sent"], counts["sqs.ReceiveMessage"],
            counts["sqs.batches_received.pacer-jobs"]) == (1, 3, 2, 1)


def test_the_proxy_forwards_requests_and_answers_unchanged_while_it_meters():
    seen = []

    class Upstream(BaseHTTPRequestHandler):
        def do_POST(self):
            seen.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            reply = json.dumps({"Item": SMALL}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    proxy = MeteringProxy(f"http://127.0.0.1:{upstream.server_address[1]}")
    try:
        body = json.dumps({"Key": SMALL, "ConsistentRead": True})
        answer = requests.post(f"{proxy.url}/some/path", data=body,
                               headers={"X-Amz-Target": "DynamoDB_20120810.GetItem"}, timeout=10)
        assert answer.json() == {"Item": SMALL}
        assert seen == [("/some/path", body.encode())]
        assert proxy.meter.snapshot()["dynamodb.rru"] == 1
    finally:
        proxy.stop()
        upstream.shutdown()
