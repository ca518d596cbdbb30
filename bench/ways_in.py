"""Jobs/s for each way in against the paced path's, in the same run (issue 12).

Targets: fair compute, one caller, 10,000 numbers: jobs/s ≥ 50% of the
paced path's in the same run; typed jobs with zero executor latency: the
same. One stack, 2 workers, `PACER_EXECUTOR_LATENCY_S=0`. Each round runs
the three ways in one after the other, each alone, N jobs each:

- paced: a run of N jobs at an unlimited rate;
- fair compute: one caller submits N distinct numbers through
  `/api/compute/batch` (100 a request, 4 requests at a time);
- typed: one caller submits N notification jobs, one per `POST /api/jobs`
  (8 at a time).

A way in's time runs from its first request to the moment its last job is
settled (read from DynamoDB, every 0.2 s); how fast its requests went in is
printed beside it, since typed jobs, one per POST, may be bound by that. Rounds alternate the order
(paced, compute, typed, then typed, compute, paced), so that a drift of the
machine or of the growing tables weighs on all three alike; each way in's
ratio is its jobs/s over the paced path's in the same round, and the
figure reported is the median ratio over the rounds.

    python -m bench.ways_in                    # 10,000 jobs each, 2 rounds
    python -m bench.ways_in --jobs 200 --rounds 1   # CI's quick form (bench/run_all.py --quick)
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from typing import Any, Callable

from bench.calls import compute_batches, paced, typed_singles
from bench.common import OUT, dynamodb, fresh_stack

WAYS_IN = ("paced", "compute", "typed")
TARGET_RATIO = 0.5
ONE_CALLER = ("bench",)


def measure(jobs: int, rounds: int, workers: int) -> dict[str, Any]:
    rng = random.Random(12)
    rows: list[dict[str, Any]] = []
    with fresh_stack(workers, "ways_in", env={"PACER_EXECUTOR_LATENCY_S": "0"}) as stack:
        api, db = stack.api_url, dynamodb(stack)
        run: dict[str, Callable[[], float]] = {
            "paced": lambda: paced(api, db, jobs),
            "compute": lambda: compute_batches(api, db, jobs, rng, ONE_CALLER),
            "typed": lambda: typed_singles(api, db, jobs, ONE_CALLER),
        }
        for index in range(rounds):
            order = WAYS_IN if index % 2 == 0 else WAYS_IN[::-1]
            row: dict[str, Any] = {"round": index + 1, "order": list(order)}
            for way in order:
                began = time.monotonic()
                sent_s = run[way]()
                row[way] = round(jobs / (time.monotonic() - began), 1)
                # How fast the requests went in: where it is close to jobs/s, submitting is the bound.
                row[f"{way}_submitted_per_s"] = round(jobs / sent_s, 1)
            for way in ("compute", "typed"):
                row[f"{way}_ratio"] = round(row[way] / row["paced"], 3)
            rows.append(row)
            print(f"ways in, round {index + 1} ({', '.join(order)}), {jobs:,} jobs each: "
                  + ", ".join(f"{way} {row[way]} jobs/s" for way in WAYS_IN)
                  + f"; compute/paced {row['compute_ratio']}, typed/paced {row['typed_ratio']}; submitted/s: compute "
                  f"{row['compute_submitted_per_s']}, typed {row['typed_submitted_per_s']}", flush=True)
    summary = {way: round(statistics.median(r[way] for r in rows), 1) for way in WAYS_IN}
    ratios = {way: round(statistics.median(r[f"{way}_ratio"] for r in rows), 3) for way in ("compute", "typed")}
    return {"jobs": jobs, "rounds": rows, "workers": workers, "median_jobs_per_s": summary,
            "ratio_to_paced": ratios, "target_ratio": TARGET_RATIO,
            "met": {way: ratio >= TARGET_RATIO for way, ratio in ratios.items()}}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs per way in and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    figures = measure(args.jobs, args.rounds, args.workers)
    verdict = lambda way: "met" if figures["met"][way] else "missed"
    median = figures["median_jobs_per_s"]
    print(f"ways in, {args.jobs:,} jobs each, median of {args.rounds} rounds: paced {median['paced']} jobs/s; "
          f"fair compute (one caller, batches) {median['compute']} jobs/s = {figures['ratio_to_paced']['compute']} "
          f"of paced ({verdict('compute')}, target ≥ {TARGET_RATIO}); typed (latency 0, one per POST) "
          f"{median['typed']} jobs/s = {figures['ratio_to_paced']['typed']} of paced ({verdict('typed')})", flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / f"ways_in-{args.jobs}.json").write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
