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

It prints AWS calls per job and jobs/s for each, and the operations that cost most;
with `--sites`, also the code each call came from (chalicelib/aws/metering.py).
With `--capacity` it also prints what AWS would bill per job (DynamoDB
request units, SQS requests with the runtime's receives and deletes, which
Lambda's poller makes on AWS, invocations, S3 requests), metered by a proxy
in front of the emulator (bench/capacity.py), and writes them to
`bench/out/calls-capacity.json`; docs/SCALING.md prices them.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import random
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import boto3
import requests

from bench.capacity import MeteringProxy
from bench.common import OUT, dynamodb, fresh_stack
from chalicelib.aws.codec import from_item
from chalicelib.aws.metering import read_calls
from chalicelib.resources import STATE_TABLE
from infra.emulator import start_emulator

CALLERS = ("c1", "c2", "c3", "c4")
TARGETS = {"paced run": 0.05, "compute, batches of 100": 0.15, "compute, one per POST": 1.5,  # issue 12
           "typed, one per POST": 2.0}
FLUSH_WAIT_S = 1.2  # every process rewrites its count twice a second


def emulator_client(endpoint_url: str) -> Any:
    return boto3.client("dynamodb", endpoint_url=endpoint_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


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


def paced(api: str, db: Any, jobs: int) -> float:
    """Each way in returns the seconds its requests took to send (a paced run: one POST)."""
    began = time.monotonic()
    run = requests.post(f"{api}/api/run", json={"x": 1_000_000, "y": 0.001, "total": jobs}, timeout=30).json()
    key = {"pk": {"S": f"RUN#{run['run_id']}"}, "sk": {"S": "META"}}
    sent_s = time.monotonic() - began
    wait(lambda: int(db.get_item(TableName=STATE_TABLE.name, Key=key, ConsistentRead=True)["Item"]["settled"]["N"])
         >= jobs, 600, "the paced run")
    return sent_s


def compute_batches(api: str, db: Any, jobs: int, rng: random.Random, callers: tuple[str, ...] = CALLERS) -> float:
    before, numbers = compute_settled(db), distinct_numbers(rng, jobs)
    batches = [(callers[i % len(callers)], numbers[offset : offset + 100])
               for i, offset in enumerate(range(0, jobs, 100))]

    def send(batch: tuple[str, list[str]]) -> None:
        requests.post(f"{api}/api/compute/batch", json={"numbers": batch[1]}, headers={"X-Caller-ID": batch[0]},
                      timeout=120).raise_for_status()

    began = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(send, batches))
    sent_s = time.monotonic() - began
    wait(lambda: compute_settled(db) - before >= jobs, 600, "the compute batches")
    return sent_s


def compute_singles(api: str, db: Any, jobs: int, rng: random.Random) -> float:
    before, numbers = compute_settled(db), distinct_numbers(rng, jobs)

    def send(i: int) -> None:
        requests.post(f"{api}/api/compute", json={"number": numbers[i]},
                      headers={"X-Caller-ID": CALLERS[i % len(CALLERS)]}, timeout=60).raise_for_status()

    began = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(jobs)))
    sent_s = time.monotonic() - began
    wait(lambda: compute_settled(db) - before >= jobs, 600, "the single compute requests")
    return sent_s


def typed_singles(api: str, db: Any, jobs: int, callers: tuple[str, ...] = CALLERS) -> float:
    before = typed_settled(db)

    def send(i: int) -> None:
        body = {"type": "notification", "payload": {"user_id": f"u{i}", "channel": "push", "message": f"m{i}"}}
        requests.post(f"{api}/api/jobs", json=body, headers={"X-Caller-ID": callers[i % len(callers)]},
                      timeout=60).raise_for_status()

    began = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(jobs)))
    sent_s = time.monotonic() - began
    wait(lambda: typed_settled(db) - before >= jobs, 600, "the typed jobs")
    return sent_s


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="1: 2,000 paced, 2,000 batched, 500 single, 300 typed")
    parser.add_argument("--capacity", action="store_true",
                        help="also meter what AWS would bill (request units, SQS and S3 requests, invocations) "
                             "through a proxy in front of the emulator (bench/capacity.py); slower")
    parser.add_argument("--sites", action="store_true", help="also print the calls per job of each call site")
    args = parser.parse_args(argv)
    sizes = {name: max(20, round(n * args.scale)) for name, n in
             (("paced run", 2000), ("compute, batches of 100", 2000), ("compute, one per POST", 500),
              ("typed, one per POST", 300))}
    rng = random.Random(7)
    rows = []
    with contextlib.ExitStack() as resources:
        counts = resources.enter_context(tempfile.TemporaryDirectory())
        env = {"PACER_AWS_CALL_LOG": counts, "PACER_EXECUTOR_LATENCY_S": "0",
               **({"PACER_AWS_CALL_SITES": "1"} if args.sites else {})}
        proxy = None
        if args.capacity:
            emulator = start_emulator()
            resources.callback(emulator.stop)
            proxy = MeteringProxy(emulator.endpoint_url)
            resources.callback(proxy.stop)
            env["AWS_ENDPOINT_URL"] = proxy.url
        stack = resources.enter_context(fresh_stack(2, "calls", env=env))
        # The bench's own progress reads go straight to the emulator, unmetered.
        api, db = stack.api_url, emulator_client(emulator.endpoint_url) if proxy else dynamodb(stack)
        ways: dict[str, Callable[[int], float]] = {
            "paced run": lambda n: paced(api, db, n),
            "compute, batches of 100": lambda n: compute_batches(api, db, n, rng),
            "compute, one per POST": lambda n: compute_singles(api, db, n, rng),
            "typed, one per POST": lambda n: typed_singles(api, db, n),
        }
        # Each way in also waits for the datalake to take its results (its lag p99 is ~3.5 s), so that its S3
        # puts are counted (and, with --capacity, billed) to it, not to the next.
        for name, run in ways.items():
            before = quiet_calls(counts, proxy)
            began = time.monotonic()
            metered_before = proxy.meter.snapshot() if proxy else Counter()
            run(sizes[name])
            elapsed = time.monotonic() - began
            counted = quiet_calls(counts, proxy) - before
            calls = Counter({op: n for op, n in counted.items() if "@" not in op})
            sites = Counter({op: n for op, n in counted.items() if "@" in op})
            jobs, total = sizes[name], sum(calls.values())
            row = {"way_in": name, "jobs": jobs, "aws_calls": total, "calls_per_job": round(total / jobs, 3),
                   "jobs_per_s": round(jobs / elapsed, 1), "top": Counter(calls).most_common(5),
                   "calls": dict(sorted(calls.items()))}
            rows.append(row)
            top = ", ".join(f"{op} {n}" for op, n in row["top"])
            print(f"calls: {name}: {jobs} jobs, {total} AWS calls = {row['calls_per_job']} per job "
                  f"(target ≤ {TARGETS[name]}), "
                  f"{row['jobs_per_s']} jobs/s; most: {top}", flush=True)
            for site, n in sites.most_common():
                print(f"  {n / jobs:7.3f} per job  {site}", flush=True)
            if proxy:
                metered = proxy.meter.snapshot()
                metered.subtract(metered_before)
                row["billed_per_job"] = {k: round(v / jobs, 5) for k, v in sorted(metered.items()) if v}
                print(f"  billed per job: {billed_summary(row['billed_per_job'])}", flush=True)
    if args.capacity:
        OUT.mkdir(exist_ok=True)
        (OUT / "calls-capacity.json").write_text(json.dumps(rows, indent=2))
    return rows


def quiet_calls(counts: str, proxy: MeteringProxy | None, longest_s: float = 8.0) -> Counter[str]:
    """The stack's calls once they stop moving (a flush interval with none, or `longest_s`): what a way in set off
    (its datalake writes come seconds after its last job) is counted to it, not to the next."""
    deadline = time.monotonic() + longest_s
    seen = read_calls(counts)
    metered = proxy.meter.snapshot() if proxy else Counter()
    while time.monotonic() < deadline:
        time.sleep(FLUSH_WAIT_S)
        now, metered_now = read_calls(counts), proxy.meter.snapshot() if proxy else Counter()
        if now == seen and metered_now == metered:
            break
        seen, metered = now, metered_now
    return seen


def billed_summary(per_job: dict[str, float]) -> str:
    sqs = sum(v for k, v in per_job.items() if k.startswith("sqs.") and k[4].isupper())
    invocations = {k.split(".", 2)[2]: v for k, v in per_job.items() if k.startswith("sqs.batches_received.")}
    return (f"{per_job.get('dynamodb.wru', 0):.3f} WRU, {per_job.get('dynamodb.rru', 0):.3f} RRU, "
            f"{sqs:.4f} SQS requests ({per_job.get('sqs.messages_sent', 0):.4f} messages sent), "
            f"SQS-triggered invocations {json.dumps(invocations)}, "
            f"{per_job.get('streams.batches_with_records', 0):.4f} stream batches, "
            f"S3 {per_job.get('s3.tier1', 0):.4f} PUT/LIST + {per_job.get('s3.tier2', 0):.4f} GET")


if __name__ == "__main__":
    main()
