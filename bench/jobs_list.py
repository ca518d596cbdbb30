"""`GET /api/jobs` latency with 10,000 typed jobs stored, filtered by status, at 20 concurrent clients (issue #6).

The jobs are written straight into the tasks table, as `DynamoTypedJobStore.create`
writes their items (`typed_job_item`), with a mix of statuses: the listing reads
only those items, and 10,000 POSTs would take minutes on the local stack while
leaving every job `pending`. Admission is paused, so no worker touches them.

Each client asks for the first page (25 jobs, newest first) of one status,
taking pending, completed and failed in turn, and every fourth request
follows the `next` token of its last page of that status, for as long as the
run lasts. It prints p50, p95
and p99 latency, requests per second and errors, and then the same for one
client alone (a quarter of the time): twenty clients back to back measure
throughput as much as latency, since each waits behind the others.

It runs twice, on two fresh stacks: as configured, where the API process
shares a page among the pollers asking for it within `PACER_READ_CACHE_S`
(0.5 s), so most first pages are shared and most `next` pages are read; and
with that cache off, every request a Query.

`--quick` is CI's short form: 1,000 jobs for 3 seconds.
"""
from __future__ import annotations

import argparse
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.common import OUT, dynamodb, fresh_stack, percentile
from chalicelib.typed.dynamo import typed_job_item
from chalicelib.typed.models import TimelineEntry, TypedJob
from chalicelib.resources import TYPED_JOBS_TABLE

ADMIN = {"Authorization": "Bearer local-admin-token"}
STATUS_MIX = ["pending"] * 4 + ["completed"] * 4 + ["failed", "cancelled"]
LISTED_STATUSES = ("pending", "completed", "failed")


def fake_job(i: int, rng: random.Random, now: float) -> TypedJob:
    status = rng.choice(STATUS_MIX)
    created = now - 86_400 + i * 86_400 / 100_000
    finished = created + 1 if status in ("completed", "failed", "cancelled") else None
    timeline = [TimelineEntry(status="pending", at=created, note="created")]
    if finished:
        timeline.append(TimelineEntry(status=status, at=finished, worker="bench", attempt=1))
    return TypedJob(id=f"j-{i:016x}", type="email", priority=rng.randint(1, 5), status=status, place="none",
                   payload={"to": "ann@example.com", "subject": f"bench {i}", "body": "hello"}, caller="bench",
                   created_at=created, finished_at=finished, attempts=1 if finished else 0, max_attempts=3,
                   result={"simulated": True} if status == "completed" else None,
                   error="SimulatedFailure: bench" if status == "failed" else None, timeline=timeline)


def seed(stack, count: int) -> None:
    db = dynamodb(stack)
    rng, now = random.Random(6), time.time()
    items = [{"PutRequest": {"Item": typed_job_item(job, job.payload["subject"])}}
             for job in (fake_job(i, rng, now) for i in range(count))]

    def write(offset: int) -> None:
        pending = {TYPED_JOBS_TABLE.name: items[offset : offset + 25]}
        while pending:
            pending = db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, range(0, len(items), 25)))


def client(api: str, until: float, offset: int, samples: list[float], errors: list[str]) -> None:
    session = requests.Session()
    turn, tokens = offset, {}
    while time.monotonic() < until:
        status = LISTED_STATUSES[turn % len(LISTED_STATUSES)]
        token = tokens.get(status) if turn % 4 == 0 else None
        query = f"status={status}&limit=25" + (f"&next={token}" if token else "")
        started = time.perf_counter()
        try:
            response = session.get(f"{api}/api/jobs?{query}", timeout=30)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                errors.append(f"{response.status_code} {response.text[:200]}")
            else:
                samples.append(elapsed)
                tokens[status] = response.json()["next"]
        except requests.RequestException as exc:
            errors.append(str(exc))
        turn += 1


def measure(api: str, clients: int, seconds: float) -> dict:
    samples: list[float] = []
    errors: list[str] = []
    until = time.monotonic() + seconds
    threads = [threading.Thread(target=client, args=(api, until, i, samples, errors)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ms = lambda p: round(percentile(samples, p) * 1000, 1) if samples else None
    return {"requests": len(samples), "per_s": round(len(samples) / seconds, 1), "p50_ms": ms(50), "p95_ms": ms(95),
            "p99_ms": ms(99), "errors": len(errors), "first_error": errors[0] if errors else None}


def run(jobs: int, clients: int, seconds: float, env: dict | None = None) -> dict:
    with fresh_stack(1, "jobs_list", env=env) as stack:
        requests.put(f"{stack.api_url}/api/jobs/dispatch", json={"paused": True}, headers=ADMIN,
                     timeout=30).raise_for_status()
        seed(stack, jobs)
        measure(stack.api_url, 2, 1.0)  # warm up: connections, imports, the first reads
        figures = {"jobs_stored": jobs, "clients": clients, "seconds": seconds,
                   **measure(stack.api_url, clients, seconds)}
        # The same requests one at a time: the latency of one request, without the queueing of twenty.
        figures["one_client"] = measure(stack.api_url, 1, seconds / 4)
    return figures


def line(label: str, figures: dict) -> str:
    return (f"{label}: p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms, p99 {figures['p99_ms']} ms, "
            f"{figures['per_s']} req/s, {figures['errors']} errors; one client: p50 {figures['one_client']['p50_ms']} "
            f"ms, p99 {figures['one_client']['p99_ms']} ms")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--quick", action="store_true", help="1,000 jobs for 3 seconds, as CI runs it")
    args = parser.parse_args(argv)
    jobs, seconds = (1_000, 3.0) if args.quick else (args.jobs, args.seconds)
    figures = run(jobs, args.clients, seconds)
    # Every request a read of DynamoDB: what the pages cost when no two pollers ask the same within 0.5 s.
    figures["uncached"] = run(jobs, args.clients, seconds, env={"PACER_READ_CACHE_S": "0"})
    print(f"GET /api/jobs?status=…&limit=25 with {jobs:,} jobs stored, {args.clients} clients, {seconds:g} s")
    print(line("  as configured (pages shared for 0.5 s)", figures))
    print(line("  every request read (PACER_READ_CACHE_S=0)", figures["uncached"]))
    OUT.mkdir(exist_ok=True)
    (OUT / ("jobs_list-quick.json" if args.quick else "jobs_list.json")).write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
