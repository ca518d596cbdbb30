"""End-to-end throughput: N jobs at an unlimited rate, with 1 and 2 worker processes.

Target (issue #3): ≥ 300 jobs/s with 2 workers on the embedded emulator.
The time is the run's own: from its start to the last outcome's counter write.
"""
from __future__ import annotations

import argparse

import requests

from bench.common import fresh_stack, seconds_between, wait_for

UNLIMITED = {"x": 1_000_000, "y": 0.001}


def measure(workers: int, jobs: int) -> dict:
    with fresh_stack(workers, f"throughput-{workers}w") as stack:
        response = requests.post(f"{stack.api_url}/api/run", json={**UNLIMITED, "total": jobs}, timeout=10)
        response.raise_for_status()
        final = wait_for(stack, lambda s: s["state"] == "completed", timeout=600)
        elapsed = seconds_between(final["started_at"], final["updated_at"])
        return {"workers": workers, "jobs": jobs, "processed": final["processed"], "failed": final["failed"],
                "seconds": round(elapsed, 2), "jobs_per_s": round(final["processed"] / elapsed, 1)}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    rows = []
    for workers in args.workers:
        row = measure(workers, args.jobs)
        print(f"throughput: {row['jobs']} jobs, {workers} worker(s): {row['jobs_per_s']} jobs/s "
              f"({row['seconds']} s, processed {row['processed']}, failed {row['failed']})", flush=True)
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
