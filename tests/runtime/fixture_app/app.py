"""A tiny Chalice project whose handlers record what the local runtime hands them.

Every invocation appends one JSON line to the file named by
RUNTIME_FIXTURE_RECORDS. Queue names start with RUNTIME_FIXTURE_QUEUE_PREFIX,
so each runtime a test starts can have queues of its own.

A message body (JSON) steers the SQS handlers:
    {"raise": true}            the handler raises, failing the whole batch
    {"fail": true}             the message is reported in batchItemFailures
    {"unknown_failure": true}  batchItemFailures names an id not in the batch
    {"sleep": seconds}         the handler sleeps, then records "finished"

The stream handler reads its table's new images the same way (attributes of
the item): `raise_until` (epoch seconds: the handler raises until then),
`fail_until` (the record is reported in batchItemFailures until then),
`fail_times` (the record is reported on its first that many deliveries,
however late the stream delivers it) and `sleep` (seconds, then "finished"
is recorded).
"""
import json
import os
import time

from chalice import Chalice

app = Chalice(app_name="runtime-fixture")

QUEUE_PREFIX = os.environ.get("RUNTIME_FIXTURE_QUEUE_PREFIX", "runtime-fixture")


@app.on_sqs_message(queue=f"{QUEUE_PREFIX}-jobs", batch_size=3)
def jobs(event):
    return handle_batch("jobs", event)


# One worker only, and a window, so that separate sends meet in one batch.
@app.on_sqs_message(
    queue=f"{QUEUE_PREFIX}-batched", batch_size=4, maximum_batching_window_in_seconds=1, maximum_concurrency=1
)
def batched(event):
    return handle_batch("batched", event)


# Its lambda_timeout in config.json is 2 s.
@app.on_sqs_message(queue=f"{QUEUE_PREFIX}-slow", batch_size=1)
def slow(event):
    return handle_batch("slow", event)


# The table's current stream, whatever its label: the runtime resolves `/stream/*` (docs/RUNTIME.md).
@app.on_dynamodb_record(
    stream_arn=f"arn:aws:dynamodb:us-east-1:123456789012:table/{QUEUE_PREFIX}-changes/stream/*",
    batch_size=5, maximum_batching_window_in_seconds=1, starting_position="TRIM_HORIZON",
)
def changes(event):
    records = event.to_dict()["Records"]
    context = event.context
    record("stream", records=records, pid=os.getpid(), request_id=context.aws_request_id,
           function_name=context.function_name)
    failures = []
    for item in records:
        image = item["dynamodb"].get("NewImage", {})
        now = time.time()
        if "raise_until" in image and now < float(image["raise_until"]["N"]):
            raise RuntimeError("the item asked the handler to raise")
        if "fail_until" in image and now < float(image["fail_until"]["N"]):
            failures.append({"itemIdentifier": item["dynamodb"]["SequenceNumber"]})
        elif "fail_times" in image and deliveries(item) <= int(image["fail_times"]["N"]):
            failures.append({"itemIdentifier": item["dynamodb"]["SequenceNumber"]})
        if "sleep" in image:
            time.sleep(float(image["sleep"]["N"]))
            record("finished", source="changes", sequence=item["dynamodb"]["SequenceNumber"], pid=os.getpid())
    return {"batchItemFailures": failures}


@app.schedule("rate(1 minute)")
def tick(event):
    record("schedule", name="tick", event=event.to_dict(), pid=os.getpid())


@app.schedule("cron(0 12 ? * 2 *)")
def monday_noon(event):
    record("schedule", name="monday_noon", event=event.to_dict(), pid=os.getpid())


# Kinds the runtime does not run: it must ignore them, not fail.
@app.on_cw_event({"source": ["runtime.fixture"]})
def on_custom_event(event):
    pass


@app.route("/")
def index():
    return {"fixture": True}


def worker_started(source):
    """The runtime's --worker-start-hook: called in each worker process before it says it is ready."""
    record("worker_started", source=source, pid=os.getpid())


def handle_batch(source, event):
    records = event.to_dict()["Records"]
    context = event.context
    record(
        "sqs",
        source=source,
        records=records,
        pid=os.getpid(),
        request_id=context.aws_request_id,
        function_name=context.function_name,
        remaining_ms=context.get_remaining_time_in_millis(),
        stage_marker=os.environ.get("RUNTIME_FIXTURE_STAGE_MARKER"),
        function_marker=os.environ.get("RUNTIME_FIXTURE_FUNCTION_MARKER"),
    )
    failures = []
    for item in records:
        body = json.loads(item["body"])
        if body.get("raise"):
            raise RuntimeError("the message asked the handler to raise")
        if body.get("fail"):
            failures.append({"itemIdentifier": item["messageId"]})
        if body.get("unknown_failure"):
            failures.append({"itemIdentifier": "not-a-message-of-this-batch"})
        if body.get("sleep"):
            time.sleep(body["sleep"])
            record("finished", source=source, message_id=item["messageId"], pid=os.getpid())
    return {"batchItemFailures": failures}


def deliveries(item) -> int:
    """How many stream invocations have been handed this record, this one included (recorded as it began)."""
    sequence = item["dynamodb"]["SequenceNumber"]
    with open(os.environ["RUNTIME_FIXTURE_RECORDS"]) as lines:
        return sum(1 for line in lines if (found := json.loads(line))["kind"] == "stream"
                   and any(r["dynamodb"]["SequenceNumber"] == sequence for r in found["records"]))


def record(kind, **fields):
    line = json.dumps({"kind": kind, **fields}) + "\n"
    # One O_APPEND write per line keeps lines whole when processes write at once.
    fd = os.open(os.environ["RUNTIME_FIXTURE_RECORDS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
