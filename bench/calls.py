"""AWS calls per job, for each way in, end to end (submit, admit, process, settle), on one stack.

Every process of the stack counts the boto3 calls its container makes
(`PACER_AWS_CALL_LOG`, chalicelib/aws/metering.py): the API, the workers and
the scheduler, heartbeats and the watchdog included; the local runtime's own
receives and deletes (the Lambda service's part on AWS) are not. The bench
reads progress straight from DynamoDB with a client of its own, which is not
counted. Each way in runs alone, one after the other:

- a paced run at an unlimited rate;
- fair compute through `/api/compute/batch` (100 numbers a request, 4 callers);
- fair compute, one number per `POST /api/compute` (4 callers, 8 at a time);
- typed jobs, one per `POST /api/jobs` (executor latency 0, 4 callers, 8 at a time).

It prints AWS calls per job and jobs/s for each, and the operations that cost most.
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import requests

from bench.common import dynamodb, fresh_stack
from chalicelib.aws.codec import from_item
from chalicelib.aws.metering import read_calls
from chalicelib.resources import STATE_TABLE

CALLERS = ("c1", "c2", "c3", "c4")
FLUSH_WAIT_S = 1.2  # every process rewrites its count twice a second


def wait(done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not done after {timeout} s")
        time.sleep(0.2)


def partition(db: Any, pk: str, prefix: str = "") -> list[dict[str, Any]]:
    condition, values = "pk = :pk", {":pk": {"S": pk}}
    if prefix:
        condition, values = condition + " AND begins_with(sk, :p)", {**values, ":p": {"S": prefix}}
    items, page = [], {}
    while True:
        response = db.query(TableName=STATE_TABLE.name, KeyConditionExpression=condition,
                            ExpressionAttributeValues=values, ConsistentRead=True, **page)
        items += [from_item(item) for item in response["Items"]]
        if "LastEvaluatedKey" not in response:
            return items
        page = {"ExclusiveStartKey": response["LastEvaluatedKey"]}


def compute_settled(db: Any) -> int:
    return sum(int(c.get("done", 0)) + int(c.get("failed", 0)) for c in partition(db, "CALLERS"))


def typed_settled(db: Any) -> int:
    return sum(int(s.get("s_completed", 0)) + int(s.get("s_failed", 0)) for s in partition(db, "TSTATS", "COUNTS#"))


def distinct_numbers(rng: random.Random, count: int) -> list[str]:
    return [str(n) for n in rng.sample(range(10**11, 10**12), count)]


def paced(api: str, db: Any, jobs: int) -> None:
    run = requests.post(f"{api}/api/run", json={"x": 1_000_000, "y": 0.001, "total": jobs}, timeout=30).json()
    key = {"pk": {"S": f"RUN#{run['run_id']}"}, "sk": {"S": "META"}}
    wait(lambda: int(db.get_item(TableName=STATE_TABLE.name, Key=key, ConsistentRead=True)["Item"]["settled"]["N"])
         >= jobs, 600, "the paced run")


def compute_batches(api: str, db: Any, jobs: int, rng: random.Random, callers: tuple[str, ...] = CALLERS) -> None:
    before, numbers = compute_settled(db), distinct_numbers(rng, jobs)
    batches = [(callers[i % len(callers)], numbers[offset : offset + 100])
               for i, offset in enumerate(range(0, jobs, 100))]

    def send(batch: tuple[str, list[str]]) -> None:
        requests.post(f"{api}/api/compute/batch", json={"numbers": batch[1]}, headers={"X-Caller-ID": batch[0]},
                      timeout=120).raise_for_status()

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(send, batches))
    wait(lambda: compute_settled(db) - before >= jobs, 600, "the compute batches")


def compute_singles(api: str, db: Any, jobs: int, rng: random.Random) -> None:
    before, numbers = compute_settled(db), distinct_numbers(rng, jobs)

    def send(i: int) -> None:
        requests.post(f"{api}/api/compute", json={"number": numbers[i]},
                      headers={"X-Caller-ID": CALLERS[i % len(CALLERS)]}, timeout=60).raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(jobs)))
    wait(lambda: compute_settled(db) - before >= jobs, 600, "the single compute requests")


def typed_singles(api: str, db: Any, jobs: int, callers: tuple[str, ...] = CALLERS) -> None:
    before = typed_settled(db)

    def send(i: int) -> None:
        body = {"type": "notification", "payload": {"user_id": f"u{i}", "channel": "push", "message": f"m{i}"}}
        requests.post(f"{api}/api/jobs", json=body, headers={"X-Caller-ID": callers[i % len(callers)]},
                      timeout=60).raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(jobs)))
    wait(lambda: typed_settled(db) - before >= jobs, 600, "the typed jobs")


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="1: 2,000 paced, 2,000 batched, 500 single, 300 typed")
    args = parser.parse_args(argv)
    sizes = {name: max(20, round(n * args.scale)) for name, n in
             (("paced run", 2000), ("compute, batches of 100", 2000), ("compute, one per POST", 500),
              ("typed, one per POST", 300))}
    rng = random.Random(7)
    rows = []
    with tempfile.TemporaryDirectory() as counts, \
            fresh_stack(2, "calls", env={"PACER_AWS_CALL_LOG": counts, "PACER_EXECUTOR_LATENCY_S": "0"}) as stack:
        api, db = stack.api_url, dynamodb(stack)
        ways: dict[str, Callable[[int], None]] = {
            "paced run": lambda n: paced(api, db, n),
            "compute, batches of 100": lambda n: compute_batches(api, db, n, rng),
            "compute, one per POST": lambda n: compute_singles(api, db, n, rng),
            "typed, one per POST": lambda n: typed_singles(api, db, n),
        }
        for name, run in ways.items():
            time.sleep(FLUSH_WAIT_S)
            before, began = read_calls(counts), time.monotonic()
            run(sizes[name])
            elapsed = time.monotonic() - began
            time.sleep(FLUSH_WAIT_S)
            calls = read_calls(counts) - before
            jobs, total = sizes[name], sum(calls.values())
            row = {"way_in": name, "jobs": jobs, "aws_calls": total, "calls_per_job": round(total / jobs, 3),
                   "jobs_per_s": round(jobs / elapsed, 1), "top": Counter(calls).most_common(5)}
            rows.append(row)
            top = ", ".join(f"{op} {n}" for op, n in row["top"])
            print(f"calls: {name}: {jobs} jobs, {total} AWS calls = {row['calls_per_job']} per job, "
                  f"{row['jobs_per_s']} jobs/s; most: {top}", flush=True)
    return rows


if __name__ == "__main__":
    main()
