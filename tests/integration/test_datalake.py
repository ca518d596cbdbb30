"""The datalake on the live stack: every result of every way in lands once, through the results stream.

The runtime reads the results table's stream (infra/runtime/streams.py) and
hands it to `results_to_datalake`, which writes NDJSON objects to S3. Each
test checks storage (every object's lines) and the export (the API) against
the results table.
"""
from __future__ import annotations

import json
from collections import Counter
import os
import random
import signal
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
import requests

from chalicelib.resources import DATALAKE_BUCKET, RESULTS_TABLE
from tests.conftest import wait_until
from tests.integration.test_paced_runs import result_items, start, status
from tests.runtime.runtime_harness import child_processes

pytestmark = [pytest.mark.integration, pytest.mark.streams]


@pytest.fixture
def s3(live_stack):
    env = live_stack.env
    return boto3.client("s3", endpoint_url=live_stack.endpoint_url, region_name=env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def stored_lines(s3) -> list[dict]:
    """Every line of every object in the datalake: what storage holds, duplicates and all."""
    lines, kwargs = [], {}
    while True:
        page = s3.list_objects_v2(Bucket=DATALAKE_BUCKET.name, Prefix="results/", **kwargs)
        for found in page.get("Contents", []):
            body = s3.get_object(Bucket=DATALAKE_BUCKET.name, Key=found["Key"])["Body"].read()
            lines += [json.loads(line) for line in body.splitlines()]
        if not page.get("IsTruncated"):
            return lines
        kwargs = {"ContinuationToken": page["NextContinuationToken"]}


def exported_ids(api) -> list[str]:
    """Every id the export gives, over every date the stats list, following the cursors."""
    ids = []
    for day in api.get(f"{api.base_url}/api/datalake/stats", timeout=10).json()["dates"]:
        cursor = None
        while True:
            response = api.get(f"{api.base_url}/api/datalake/export/{day['date']}",
                               params={"cursor": cursor} if cursor else {}, timeout=60)
            assert response.status_code == 200 and response.headers["Content-Type"] == "application/x-ndjson"
            ids += [json.loads(line)["id"] for line in response.text.splitlines()]
            if not (cursor := response.headers.get("X-Next-Cursor")):
                break
    return ids


def groups_ids(aws, groups: set[str]) -> set[str]:
    return {item["job_id"]["S"] for group in groups for item in result_items(aws, group)}


def landed(s3, ids: set[str]) -> list[dict]:
    """Once every one of `ids` is stored: the stored lines of those ids."""
    mine = [line for line in stored_lines(s3) if line["id"] in ids]
    return mine if {line["id"] for line in mine} == ids else []


def fresh_numbers(count: int) -> list[str]:
    return [str(random.randrange(10**12, 10**13)) for _ in range(count)]


def test_a_paced_run_a_compute_batch_and_typed_jobs_land_in_the_datalake_exactly_once(api, aws, s3):
    tag = uuid.uuid4().hex[:8]
    run = start(api, x=60000, y=1, total=2000)
    caller = f"lake-{tag}"
    numbers = fresh_numbers(200)
    for offset in range(0, 200, 100):
        response = api.post(f"{api.base_url}/api/compute/batch", json={"numbers": numbers[offset:offset + 100]},
                            headers={"X-Caller-ID": caller}, timeout=30)
        assert response.status_code == 202, response.text

    def submit(i: int) -> None:
        body = {"type": "email", "payload": {"to": "ann@example.com", "subject": f"lake {tag} {i}", "body": "hi"}}
        response = requests.post(f"{api.base_url}/api/jobs", json=body, headers={"X-Caller-ID": caller}, timeout=30)
        assert response.status_code == 201, response.text

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(submit, range(100)))
    wait_until(lambda: status(api)["state"] == "completed", timeout=120, what="the run's completion")
    expected = wait_until(lambda: len(ids := groups_ids(aws, {run["run_id"], caller})) == 2300 and ids,
                          timeout=120, what="2,300 result items")

    lines = wait_until(lambda: landed(s3, expected), timeout=60, what="every result in the datalake")
    assert len(lines) == 2300, "storage holds each result once"
    by_origin = {origin: [line for line in lines if line["origin"] == origin] for origin in ("run", "compute", "typed")}
    assert {origin: len(found) for origin, found in by_origin.items()} == {"run": 2000, "compute": 200, "typed": 100}
    assert all(line["run"] == run["run_id"] and line["type"] == "factor" for line in by_origin["run"])
    assert all(line["caller"] == caller for line in by_origin["compute"] + by_origin["typed"])
    assert all(line["type"] == "email" and line["result"] for line in by_origin["typed"] if line["status"] == "done")
    for line in lines:
        assert line["status"] in ("done", "failed") and line["worker"] and line["attempts"] >= 1
        assert line["finished_at"].endswith("Z") and line["started_at"] and line["submitted_at"]
        assert line["duration_s"] >= 0 and line["wait_s"] is not None
    assert sorted(set(exported_ids(api)) & expected) == sorted(expected)
    assert len([i for i in exported_ids(api) if i in expected]) == 2300, "the export gives each id once"
    stats = api.get(f"{api.base_url}/api/datalake/stats", timeout=10).json()
    assert stats["totals"]["records"] == len(stored_lines(s3)), "stats count each stored line once"
    summary = api.get(f"{api.base_url}/api/metrics/summary", timeout=10).json()
    assert summary["jobs"]["by_origin"]["run"]["done"] >= 2000
    assert summary["datalake_lag_s"]["p50"] is not None and summary["workers"]["up"] >= 1


def test_killing_the_stream_reader_and_restarting_the_runtime_mid_stream_loses_and_duplicates_nothing(
        api, aws, s3, live_stack):
    run = start(api, x=60000, y=1, total=1500)
    runtime = live_stack.services["runtime"].process
    wait_until(lambda: status(api)["processed"] >= 300, timeout=60, what="some results")
    [reader] = [pid for pid, cmd in child_processes(runtime.pid).items() if "infra.runtime.streams" in cmd]
    os.kill(reader, signal.SIGKILL)
    wait_until(lambda: status(api)["processed"] >= 800, timeout=60, what="more results")
    live_stack.restart("runtime")
    wait_until(lambda: status(api)["state"] == "completed", timeout=120, what="the run's completion")
    expected = wait_until(lambda: len(ids := groups_ids(aws, {run["run_id"]})) == 1500 and ids, timeout=60,
                          what="1,500 result items")
    lines = wait_until(lambda: landed(s3, expected), timeout=60, what="every result in the datalake")
    assert len(lines) == 1500, "a replayed batch rewrote its own object, so storage holds each result once"
    assert len([i for i in exported_ids(api) if i in expected]) == 1500


def test_a_batch_handed_over_again_rewrites_its_object_and_adds_nothing(api, aws, s3, live_stack, monkeypatch):
    from app import results_to_datalake
    from chalicelib.container import Container, reset_container
    from infra.runtime.stream_batch import stream_event

    run = start(api, x=60000, y=1, total=100)
    wait_until(lambda: status(api)["state"] == "completed", timeout=60, what="the run's completion")
    expected = {item["job_id"]["S"] for item in result_items(aws, run["run_id"])}
    wait_until(lambda: landed(s3, expected), timeout=60, what="the run in the datalake")
    before_keys = {o["Key"] for o in s3.list_objects_v2(Bucket=DATALAKE_BUCKET.name).get("Contents", [])}
    before_stats = api.get(f"{api.base_url}/api/datalake/stats", timeout=10).json()
    before_ids = Counter(line["id"] for line in stored_lines(s3))

    # The results stream's first records, handed to the handler again as Lambda would redeliver a batch.
    streams = boto3.client("dynamodbstreams", endpoint_url=live_stack.endpoint_url,
                           region_name=live_stack.env["AWS_DEFAULT_REGION"],
                           aws_access_key_id="testing", aws_secret_access_key="testing")
    arn = aws["dynamodb"].describe_table(TableName=RESULTS_TABLE.name)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    checkpoint = aws["dynamodb"].query(
        TableName="pacer-state", KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"RUNTIME#stream#pacer-local-results_to_datalake#{arn}"}})["Items"]
    assert checkpoint and checkpoint[0]["sequence_number"]["S"], "the runtime keeps its checkpoint in the state table"
    records = streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)["Records"]
    # The runtime's first batch is what the window gathered; take a batch the runtime did write: find an object
    # whose range starts at the first record, and hand over exactly its records.
    first = int(records[0]["dynamodb"]["SequenceNumber"])
    [key] = [k for k in before_keys if int(k.rsplit("/", 1)[1].split("_")[0]) == first][:1]
    last = int(key.rsplit("/", 1)[1].split("_")[1])
    batch = [r for r in records if first <= int(r["dynamodb"]["SequenceNumber"]) <= last]
    for name in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, live_stack.env[name])
    reset_container(Container())
    try:
        results_to_datalake(stream_event(batch, arn), None)
    finally:
        reset_container()

    after_keys = {o["Key"] for o in s3.list_objects_v2(Bucket=DATALAKE_BUCKET.name).get("Contents", [])}
    assert after_keys == before_keys, "the redelivered batch was written under its own keys again"
    after_stats = api.get(f"{api.base_url}/api/datalake/stats", timeout=10).json()
    assert after_stats["totals"]["records"] == before_stats["totals"]["records"]
    # The replay stored nothing again. (The whole bucket is not checked for unique ids: the session's stack is
    # shared, and an admin retry, which the pages' tests make, settles a job a second time: two outcomes.)
    assert Counter(line["id"] for line in stored_lines(s3)) == before_ids, "the replay stored a result again"
    assert {r["dynamodb"]["Keys"]["job_id"]["S"] for r in batch} <= set(before_ids)
