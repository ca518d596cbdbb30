"""The datalake's lag and throughput at the paced path's full throughput, and the export's time.

A run of N jobs at an unlimited rate (the paced path as fast as 2 workers go)
on a fresh stack. Each result's lag is the time from its write to the results
table (its `finished_at`; the ledger writes right after) to the write of the
datalake object that holds it (the object's `written-at` metadata).
Target (issue #13): lag ≤ 5 s locally.

The export is timed on a day of synthetic records (100,000 by default, in
objects of 1,000, as the stream handler writes them), paged through
`GET /api/datalake/export/{date}` with its cursor.
"""
from __future__ import annotations

import argparse
import json
import time

import boto3
import requests

from bench.common import fresh_stack, percentile, seconds_between, wait_for
from chalicelib.datalake.service import object_key
from chalicelib.resources import DATALAKE_BUCKET

UNLIMITED = {"x": 1_000_000, "y": 0.001}
EXPORT_DATE = "2000-01-01"  # a day of its own, for the synthetic export
EXPORT_OBJECT_RECORDS = 1000


def s3_client(stack):
    return boto3.client("s3", endpoint_url=stack.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def stored(s3, run_id: str) -> list[tuple[float, float]]:
    """(finished_at, written_at) of every stored line of the run."""
    pairs = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=DATALAKE_BUCKET.name, Prefix="results/"):
        for found in page.get("Contents", []):
            if EXPORT_DATE in found["Key"]:
                continue
            got = s3.get_object(Bucket=DATALAKE_BUCKET.name, Key=found["Key"])
            written = float(got["Metadata"]["written-at"])
            for line in got["Body"].read().splitlines():
                record = json.loads(line)
                if record["id"].startswith(f"{run_id}:"):
                    pairs.append((_epoch(record["finished_at"]), written))
    return pairs


def _epoch(iso: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def seed_export_day(s3, records: int) -> None:
    line = {"origin": "run", "group": "run-x", "run": "run-x", "caller": None, "type": "factor", "status": "done",
            "result": {"number": "600851475143", "factors": ["71", "839", "1471", "6857"]}, "error": None,
            "attempts": 1, "worker": "bench", "submitted_at": f"{EXPORT_DATE}T00:00:00.000Z",
            "started_at": f"{EXPORT_DATE}T00:00:00.500Z", "finished_at": f"{EXPORT_DATE}T00:00:01.000Z",
            "duration_s": 0.5, "wait_s": 0.5}
    for start in range(0, records, EXPORT_OBJECT_RECORDS):
        end = min(records, start + EXPORT_OBJECT_RECORDS)
        body = "".join(json.dumps({"id": f"x:{n:08d}", **line, "sequence": str(10**20 + n)}) + "\n"
                       for n in range(start, end)).encode()
        s3.put_object(Bucket=DATALAKE_BUCKET.name, Key=object_key(EXPORT_DATE, str(10**20 + start),
                                                                  str(10**20 + end - 1), "bench"), Body=body)


def time_export(api_url: str) -> tuple[float, int, int]:
    started, records, pages, cursor = time.monotonic(), 0, 0, None
    with requests.Session() as session:
        while True:
            response = session.get(f"{api_url}/api/datalake/export/{EXPORT_DATE}",
                                   params={"cursor": cursor} if cursor else {}, timeout=120)
            response.raise_for_status()
            records += response.text.count("\n")
            pages += 1
            if not (cursor := response.headers.get("X-Next-Cursor")):
                return time.monotonic() - started, records, pages


def measure(jobs: int, export_records: int, workers: int = 2) -> dict:
    with fresh_stack(workers, "datalake") as stack:
        response = requests.post(f"{stack.api_url}/api/run", json={**UNLIMITED, "total": jobs}, timeout=10)
        response.raise_for_status()
        run_id = response.json()["run_id"]
        final = wait_for(stack, lambda s: s["state"] == "completed", timeout=900)
        run_seconds = seconds_between(final["started_at"], final["updated_at"])
        s3 = s3_client(stack)
        deadline = time.monotonic() + 120
        while len(pairs := stored(s3, run_id)) < jobs and time.monotonic() < deadline:
            time.sleep(1)
        lags = [written - finished for finished, written in pairs]
        first_result, last_write = min(f for f, _ in pairs), max(w for _, w in pairs)
        seed_export_day(s3, export_records)
        export_s, exported, pages = time_export(stack.api_url)
        return {
            "jobs": jobs, "workers": workers, "stored": len(pairs), "distinct": len({p for p in pairs}),
            "run_jobs_per_s": round(final["processed"] / run_seconds, 1),
            # From the first result's write to the last object's: what the datalake kept up with.
            "datalake_records_per_s": round(len(pairs) / max(0.001, last_write - first_result), 1),
            "lag_p50_s": round(percentile(lags, 50), 3), "lag_p99_s": round(percentile(lags, 99), 3),
            "lag_max_s": round(max(lags), 3),
            "export_records": exported, "export_pages": pages, "export_s": round(export_s, 2),
            "export_records_per_s": round(exported / export_s, 1),
        }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--export-records", type=int, default=100_000)
    args = parser.parse_args(argv)
    row = measure(args.jobs, args.export_records)
    print(f"datalake: {row['jobs']} jobs at {row['run_jobs_per_s']} jobs/s, {row['stored']} stored; "
          f"{row['datalake_records_per_s']} records/s into the datalake; lag p50 {row['lag_p50_s']} s, "
          f"p99 {row['lag_p99_s']} s, max {row['lag_max_s']} s (target ≤ 5 s); export of {row['export_records']} "
          f"records in {row['export_pages']} pages: {row['export_s']} s", flush=True)
    return row


if __name__ == "__main__":
    main()
