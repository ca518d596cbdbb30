"""Cost per million jobs on AWS for each way in, priced from what `bench.calls --capacity` metered.

    python -m bench.calls --scale 0.5 --capacity   # writes bench/out/calls-capacity.json
    python -m bench.cost [--from docs/calls-capacity.json]

It prints docs/SCALING.md's table: for each way in, each billed item per
job, times a million, times its list price. The prices are AWS's public
list prices for us-east-1 (on-demand, x86, no free tier), as stated in
PRICES; the durations of Lambda invocations are assumptions, stated in
DURATIONS_S, since nothing here ran on Lambda.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.common import OUT

PRICES_AS_OF = "list prices for us-east-1 as published in 2025, assumed unchanged on 2026-11-27"
PRICES = {  # dollars per unit
    "dynamodb_wru": 0.625 / 1e6,  # on-demand write request unit (1 KB; twice for a transactional write)
    "dynamodb_rru": 0.125 / 1e6,  # on-demand read request unit (4 KB strongly consistent, or two eventually)
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KB chunk of a request
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_s": 0.0000166667,  # x86
    "api_gateway_request": 3.50 / 1e6,  # REST API, what `chalice deploy` creates (first 333 million a month)
    "s3_put": 0.005 / 1e3,  # PUT, COPY, POST, LIST
    "s3_get": 0.0004 / 1e3,  # GET and the rest
}
MEMORY_GB = 0.5  # .chalice/config.json: lambda_memory_size 512
DURATIONS_S = {  # assumed: a few DynamoDB round trips of ~5-10 ms each in-region, plus Python's own time
    "api": 0.05,  # one API request
    "pacer-jobs": 0.15,  # one batch of job messages: work and settlement
    "pacer-ticks": 0.05,  # one tick or admission request
    "stream": 0.3,  # one datalake batch from the results stream: S3 put and catalog transaction
}
# API requests per job, by how each way in submits (a paced run is one POST for all its jobs).
API_REQUESTS_PER_JOB = {"paced run": 0.0, "compute, batches of 100": 0.01, "compute, one per POST": 1.0,
                        "typed, one per POST": 1.0}


def per_job(row: dict[str, Any]) -> dict[str, float]:
    """The billed quantities per job of one way in."""
    billed, calls, jobs = row["billed_per_job"], row["calls"], row["jobs"]
    batches = {k.rsplit(".", 1)[-1]: v for k, v in billed.items() if k.startswith("sqs.batches_received.")}
    container_sqs = sum(n for op, n in calls.items() if op.startswith("sqs.")) / jobs
    return {
        "wru": billed.get("dynamodb.wru", 0.0),
        "rru": billed.get("dynamodb.rru", 0.0),
        # Pacer's own SQS calls, and Lambda's poller: one receive and one delete per batch it hands over
        # (its empty long polls are a fixed cost, not a cost per job).
        "sqs": container_sqs + 2 * sum(batches.values()),
        "api": API_REQUESTS_PER_JOB[row["way_in"]],
        "worker_invocations": batches.get("pacer-jobs", 0.0),
        "tick_invocations": batches.get("pacer-ticks", 0.0),
        "stream_invocations": billed.get("streams.batches_with_records", 0.0),
        "s3_put": billed.get("s3.tier1", 0.0),
        "s3_get": billed.get("s3.tier2", 0.0),
    }


def priced(q: dict[str, float]) -> list[tuple[str, str, float]]:
    """(item, arithmetic, dollars per million jobs)."""
    m = 1e6
    invocations = q["api"] + q["worker_invocations"] + q["tick_invocations"] + q["stream_invocations"]
    gb_s = MEMORY_GB * (q["api"] * DURATIONS_S["api"] + q["worker_invocations"] * DURATIONS_S["pacer-jobs"]
                        + q["tick_invocations"] * DURATIONS_S["pacer-ticks"]
                        + q["stream_invocations"] * DURATIONS_S["stream"])
    return [
        ("DynamoDB writes", f"{q['wru']:.2f} WRU × 1M × $0.625/M", q["wru"] * m * PRICES["dynamodb_wru"]),
        ("DynamoDB reads", f"{q['rru']:.3f} RRU × 1M × $0.125/M", q["rru"] * m * PRICES["dynamodb_rru"]),
        ("SQS", f"{q['sqs']:.4f} requests × 1M × $0.40/M", q["sqs"] * m * PRICES["sqs_request"]),
        ("API Gateway", f"{q['api']:g} requests × 1M × $3.50/M", q["api"] * m * PRICES["api_gateway_request"]),
        ("Lambda requests", f"{invocations:.4f} invocations × 1M × $0.20/M", invocations * m * PRICES["lambda_request"]),
        ("Lambda duration", f"{gb_s * 1000:.3f} GB-ms × 1M × $0.0000166667/GB-s", gb_s * m * PRICES["lambda_gb_s"]),
        ("S3", f"({q['s3_put']:.4f} PUT × $0.005 + {q['s3_get']:.4f} GET × $0.0004) × 1M / 1,000",
         q["s3_put"] * m * PRICES["s3_put"]
         + q["s3_get"] * m * PRICES["s3_get"]),
    ]


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| way in | item | per job × 1M × price | $ per million jobs |", "|---|---|---|---|"]
    for row in rows:
        items = priced(per_job(row))
        for index, (item, arithmetic, dollars) in enumerate(items):
            lines.append(f"| {row['way_in'] if index == 0 else ''} | {item} | {arithmetic} | {dollars:.3f} |")
        lines.append(f"| | **total** | | **{sum(d for _, _, d in items):.2f}** |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", type=Path, default=OUT / "calls-capacity.json")
    args = parser.parse_args(argv)
    text = table(json.loads(args.source.read_text()))
    print(f"Prices: {PRICES_AS_OF}; Lambda at {MEMORY_GB:g} GB, durations assumed {DURATIONS_S}.\n")
    print(text)
    return text


if __name__ == "__main__":
    main()
