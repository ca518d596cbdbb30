"""Bots' claims (issue 14): claims per second and claim-to-complete latency with 10 bots.

One stack on the embedded emulator (1 worker process, which bot jobs never
reach). `--jobs` bot jobs (1,000) wait first, made by `POST /api/jobs/populate`
from `--callers` callers (4), so claims go through fairness across callers.
Then `--bots` bots (10), each a thread with its own HTTP session and token,
claim one job at a time and complete it at once (no simulated work), until
every job is done. For each job:

- claim latency: the claim request, sent to answered;
- claim-to-complete latency: from sending the claim to the complete's answer,
  a bot's whole cycle for a job that takes no time to run.

It prints claims per second (jobs completed over the wall time from the
first claim to the last complete), the latencies' p50/p95/p99, and the 204s
(claims that found nothing) and 409s (settles refused) seen; every job must
end completed exactly once.
"""
from __future__ import annotations

import argparse
import threading
import time
from typing import Any

import requests

from bench.common import fresh_stack, percentile

ADMIN = {"Authorization": "Bearer local-admin-token"}
POPULATE_MAX = 100  # POST /api/jobs/populate's largest batch


def make_backlog(api: str, jobs: int, callers: int) -> None:
    made = 0
    while made < jobs:
        count = min(POPULATE_MAX, jobs - made)
        caller = f"caller-{(made // POPULATE_MAX) % callers}"
        requests.post(f"{api}/api/jobs/populate", json={"count": count, "type": "email", "target": "bot"},
                      headers={**ADMIN, "X-Caller-ID": caller}, timeout=60).raise_for_status()
        made += count


class Tally:
    def __init__(self, jobs: int) -> None:
        self.lock = threading.Lock()
        self.left = jobs
        self.claim_ms: list[float] = []
        self.cycle_ms: list[float] = []
        self.done: list[str] = []
        self.empty = 0  # 204s
        self.refused = 0  # 409s on complete
        self.first = self.last = 0.0


def run_bot(api: str, name: str, tally: Tally, deadline: float) -> None:
    with requests.Session() as session:
        bot = session.post(f"{api}/api/bots", json={"name": name}, timeout=30).json()
        auth = {"Authorization": f"Bearer {bot['token']}"}
        while time.monotonic() < deadline:
            with tally.lock:
                if tally.left <= 0:
                    return
            sent = time.perf_counter()
            claimed = session.post(f"{api}/api/bots/{bot['id']}/claim", json={}, headers=auth, timeout=60)
            answered = time.perf_counter()
            if claimed.status_code == 204:
                with tally.lock:
                    tally.empty += 1
                time.sleep(0.05)
                continue
            claimed.raise_for_status()
            job = claimed.json()["job"]
            done = session.post(f"{api}/api/bots/{bot['id']}/jobs/{job['id']}/complete", json={"result": {"ok": 1}},
                                headers=auth, timeout=60)
            finished = time.perf_counter()
            with tally.lock:
                tally.first = tally.first or sent
                if done.status_code == 409:
                    tally.refused += 1
                    continue
                done.raise_for_status()
                tally.left -= 1
                tally.last = finished
                tally.done.append(job["id"])
                tally.claim_ms.append((answered - sent) * 1000)
                tally.cycle_ms.append((finished - sent) * 1000)


def measure(jobs: int, bots: int, callers: int, timeout_s: float) -> dict[str, Any]:
    with fresh_stack(1, "claims") as stack:
        api = stack.api_url
        make_backlog(api, jobs, callers)
        tally = Tally(jobs)
        deadline = time.monotonic() + timeout_s
        threads = [threading.Thread(target=run_bot, args=(api, f"bench-{i}", tally, deadline), daemon=True)
                   for i in range(bots)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = requests.get(f"{api}/api/stats", timeout=30).json()
    wall = tally.last - tally.first
    spread = lambda values: {f"p{p}": round(percentile(values, p), 1) for p in (50, 95, 99)} if values else {}
    return {"jobs": jobs, "bots": bots, "callers": callers, "completed": len(tally.done),
            "distinct_completed": len(set(tally.done)), "completed_in_stats": stats["by_status"].get("completed", 0),
            "wall_s": round(wall, 2), "claims_per_s": round(len(tally.done) / wall, 1) if wall > 0 else None,
            "claim_ms": spread(tally.claim_ms), "claim_to_complete_ms": spread(tally.cycle_ms),
            "empty_claims": tally.empty, "refused_completes": tally.refused}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--bots", type=int, default=10)
    parser.add_argument("--callers", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=600, help="give up after this many seconds")
    parser.add_argument("--quick", action="store_true", help="200 jobs, the short form")
    args = parser.parse_args(argv)
    row = measure(200 if args.quick else args.jobs, args.bots, args.callers, args.timeout)
    print(f"claims with {row['bots']} bots: {row['completed']:,} of {row['jobs']:,} jobs from {row['callers']} callers "
          f"claimed and completed in {row['wall_s']} s = {row['claims_per_s']} claims/s; claim p50/p95/p99 "
          f"{'/'.join(str(v) for v in row['claim_ms'].values())} ms; claim-to-complete p50/p95/p99 "
          f"{'/'.join(str(v) for v in row['claim_to_complete_ms'].values())} ms; {row['empty_claims']} empty "
          f"claims (204), {row['refused_completes']} completes refused (409); completed once each: "
          f"{row['distinct_completed'] == row['completed'] == row['completed_in_stats']}")
    return row


if __name__ == "__main__":
    main()
