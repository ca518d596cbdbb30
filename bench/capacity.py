"""What the AWS calls of a stack would be billed as: a metering proxy between the stack and the emulator.

`bench/calls.py --capacity` starts the emulator itself and points the stack
at this proxy (`AWS_ENDPOINT_URL`). Every request passes through unchanged;
on the way the proxy adds up what AWS bills for it:

- DynamoDB request units, from the items in the requests and responses:
  a write is 1 WRU per KB of the item written, twice that in a
  transaction; a read 1 RRU per 4 KB read (strongly consistent), half
  that eventually consistent, twice that in a transaction; at least one
  unit a request; a write whose condition fails is billed as the write.
  UpdateItem, DeleteItem and ConditionCheck do not show the
  stored item's size, so each counts as an item of at most 1 KB (Pacer's
  counters and claims are far smaller). Streams reads are not billed for a
  Lambda trigger and are only counted.
- SQS requests, each 64 KB of payload a request; messages sent and received;
  receives that returned messages, per queue: the local runtime's function
  invocations (Lambda's poller does the same receives on AWS).
- S3 requests, by price tier: PUT, COPY, POST and LIST; GET and the rest.

The local runtime's own DynamoDB bookkeeping (stream checkpoints, the
concurrency it reads: items under `RUNTIME#`) is what Lambda's event source
mappings do on AWS, unbilled: it is counted apart, as `runtime.*`, and so
are the local stack's reads of the bot count, which nothing makes on AWS.
"""
from __future__ import annotations

import base64
import http.client
import json
import math
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection",
              "content-length"}
SQS_CHUNK = 64 * 1024


def value_size(value: dict[str, Any]) -> int:
    """A DynamoDB attribute value's size by AWS's rules, closely enough for billing."""
    (kind, data), = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return (len(data.lstrip("-").replace(".", "").strip("0")) + 1) // 2 + 1  # a byte per two digits, and one
    if kind == "B":
        return len(base64.b64decode(data))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS"):
        return sum(value_size({kind[0]: x}) for x in data)
    if kind == "BS":
        return sum(len(base64.b64decode(x)) for x in data)
    if kind == "L":
        return 3 + sum(1 + value_size(x) for x in data)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(x) for k, x in data.items())
    return 0


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int, consistent: bool) -> float:
    return max(1, math.ceil(size / 4096)) * (1.0 if consistent else 0.5)


def dynamodb_units(op: str, body: dict[str, Any], reply: dict[str, Any]) -> tuple[float, float]:
    """(WRU, RRU) of one DynamoDB request."""
    if op == "PutItem":
        return write_units(item_size(body["Item"])), 0
    if op in ("UpdateItem", "DeleteItem"):
        return 1, 0
    if op == "BatchWriteItem":
        unprocessed = sum(len(v) for v in (reply.get("UnprocessedItems") or {}).values())
        units = [write_units(item_size(w["PutRequest"]["Item"])) if "PutRequest" in w else 1
                 for writes in body["RequestItems"].values() for w in writes]
        return sum(units) * (len(units) - unprocessed) / max(1, len(units)), 0
    if op == "TransactWriteItems":
        return 2 * sum(write_units(item_size(t["Put"]["Item"])) if "Put" in t else 1
                       for t in body["TransactItems"]), 0
    if op == "GetItem":
        return 0, read_units(item_size(reply.get("Item") or {}), bool(body.get("ConsistentRead")))
    if op == "BatchGetItem":
        units = 0.0
        for table, found in (reply.get("Responses") or {}).items():
            consistent = bool(body["RequestItems"].get(table, {}).get("ConsistentRead"))
            asked = len(body["RequestItems"].get(table, {}).get("Keys", []))
            left = len((reply.get("UnprocessedKeys") or {}).get(table, {}).get("Keys", []))
            units += sum(read_units(item_size(i), consistent) for i in found)
            units += max(0, asked - left - len(found)) * read_units(0, consistent)  # a missing key costs the minimum
        return 0, units
    if op in ("Query", "Scan"):
        return 0, read_units(sum(item_size(i) for i in reply.get("Items", [])), bool(body.get("ConsistentRead")))
    if op == "TransactGetItems":
        return 0, 2 * sum(read_units(item_size(r.get("Item") or {}), True) for r in reply.get("Responses", []))
    return 0, 0  # the control plane (DescribeTable, CreateTable …) is not billed per request


class Meter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.counts)

    def record(self, method: str, path: str, headers: Any, body: bytes, status: int, reply: bytes) -> None:
        target = headers.get("X-Amz-Target", "")
        scope = headers.get("Authorization", "").split("Credential=")[-1].split("/")
        service = scope[3] if len(scope) > 3 else ""
        try:
            if target.startswith("DynamoDBStreams_"):
                op = target.split(".")[-1]
                records = json.loads(reply).get("Records") if op == "GetRecords" and status == 200 else None
                self.counts_add(f"streams.{op}", 1)
                if records:
                    self.counts_add("streams.batches_with_records", 1)
                    self.counts_add("streams.records", len(records))
            elif target.startswith("DynamoDB_"):
                self._dynamodb(target.split(".")[-1], body, status, reply)
            elif target.startswith("AmazonSQS."):
                self._sqs(target.split(".")[-1], json.loads(body or b"{}"), body, status, reply)
            elif service == "sqs":  # the query protocol, should a client use it
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                self.counts_add(f"sqs.{form.get('Action', '?')}", max(1, math.ceil(len(body) / SQS_CHUNK)))
            elif service == "s3":
                self._s3(method, path)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # never let metering break a request
            self.counts_add(f"unmetered.{type(exc).__name__}", 1)

    def counts_add(self, name: str, amount: float) -> None:
        with self.lock:
            self.counts[name] += amount

    def _dynamodb(self, op: str, body: bytes, status: int, reply: bytes) -> None:
        text = body.decode()
        # The local runtime's bookkeeping: stream checkpoints and its concurrency reads (infra/runtime), and the
        # local stack's reads of the bot count it follows (infra/stack.py; nothing reads it so on AWS).
        owner = "runtime.dynamodb" if "RUNTIME#stream" in text or (op == "Query" and "RUNTIME#concurrency" in text) \
            or (op == "GetItem" and "RUNTIME#bots" in text) else "dynamodb"
        parsed, answer = json.loads(text), json.loads(reply or b"{}")
        error = str(answer.get("__type", "")).rsplit("#", 1)[-1] if status != 200 else ""
        # A write whose condition fails is billed as the write, and a cancelled transaction as the transaction;
        # throttled or invalid requests are not billed.
        if error and error not in ("ConditionalCheckFailedException", "TransactionCanceledException"):
            self.counts_add(f"{owner}.failed.{op}", 1)
            return
        wru, rru = dynamodb_units(op, parsed, answer if status == 200 else {})
        with self.lock:
            self.counts[f"{owner}.{op}"] += 1
            self.counts[f"{owner}.wru"] += wru
            self.counts[f"{owner}.rru"] += rru
            self.counts[f"{owner}.wru.{op}"] += wru
            self.counts[f"{owner}.rru.{op}"] += rru
            if error:
                self.counts[f"{owner}.{error}.{op}"] += 1

    def _sqs(self, op: str, request: dict[str, Any], body: bytes, status: int, reply: bytes) -> None:
        queue = str(request.get("QueueUrl", "")).rsplit("/", 1)[-1]
        with self.lock:
            self.counts[f"sqs.{op}"] += max(1, math.ceil(len(body) / SQS_CHUNK))
            if op == "SendMessage":
                self.counts["sqs.messages_sent"] += 1
            elif op == "SendMessageBatch":
                self.counts["sqs.messages_sent"] += len(request.get("Entries", []))
        if op == "ReceiveMessage" and status == 200:
            received = len(json.loads(reply or b"{}").get("Messages", []))
            if received:
                with self.lock:
                    self.counts["sqs.messages_received"] += received
                    self.counts[f"sqs.batches_received.{queue}"] += 1

    def _s3(self, method: str, path: str) -> None:
        parts = urlsplit(path)
        is_list = method == "GET" and (parts.path.strip("/").count("/") == 0)  # a bucket, not an object
        tier = "s3.tier1" if method in ("PUT", "POST", "COPY") or is_list else "s3.tier2"
        self.counts_add(tier, 1)
        self.counts_add(f"s3.{method}{' list' if is_list else ''}", 1)


class MeteringProxy:
    """An HTTP proxy on a free port in front of `upstream` (host, port), metering as it forwards."""

    def __init__(self, upstream: str):
        split = urlsplit(upstream)
        self.upstream = (split.hostname or "127.0.0.1", split.port or 80)
        self.meter = Meter()
        proxy = self
        local = threading.local()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while (size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self) -> None:
                body = self._read_body()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Content-Length"] = str(len(body))
                for attempt in (1, 2):  # an idle kept-alive connection the emulator closed: open a new one
                    connection = getattr(local, "connection", None) or http.client.HTTPConnection(*proxy.upstream,
                                                                                                  timeout=120)
                    local.connection = connection
                    try:
                        connection.request(self.command, self.path, body=body, headers=headers)
                        response = connection.getresponse()
                        reply = response.read()
                        break
                    except (http.client.HTTPException, ConnectionError, OSError):
                        connection.close()
                        local.connection = None
                        if attempt == 2:
                            raise
                proxy.meter.record(self.command, self.path, self.headers, body, response.status, reply)
                self.send_response_only(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                # A HEAD answer keeps the length of what a GET would return (S3's HeadObject reads it).
                self.send_header("Content-Length", response.getheader("Content-Length", "0")
                                 if self.command == "HEAD" else str(len(reply)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, name="metering-proxy", daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
