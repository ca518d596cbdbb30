"""Fair compute's shares while callers are backlogged: weights 2:1, then three callers of equal weight (issue 12).

Targets: with weights 2:1 the shares come out 2:1 within 5% (a ratio of
1.9 to 2.1); with three callers backlogged, Jain's index of their jobs/s is
at least 0.95 over a window of at least 10 s.

One stack, 2 workers, two phases, each through `/api/compute/batch`:
1. Caller `heavy` is weighted 2 and `light` 1 (`PUT /api/callers/{caller}`,
   admin token) before either submits; then both submit the same number of
   distinct numbers at the same moment.
2. Once those are done, callers `a`, `b` and `c` (weight 1) submit the same
   number each at the same moment. The spike (bench/fairness.py) cannot give
   three callers a long common backlog: its third caller has 10 numbers.
For every job the benchmark reads, from DynamoDB, when it was submitted,
admitted and finished.

A phase's window, in which every caller is backlogged, runs from the later
of the callers' last submits (the backlogs are whole) to the earliest last
admission (after it, a caller has nothing left to admit). It prints the jobs
each caller finished in that window: phase 1 their ratio, and whether it is
within 5% of 2; phase 2 Jain's index, (sum x)^2 / (n * sum x^2), where 1 is
equal shares.

`--scale 0.1` (600 and 300 numbers a caller) is CI's quick form; the default
is 6,000 a caller in phase 1 and 3,000 in phase 2.
"""
from __future__ import annotations

import argparse
import json
import random
from typing import Any

import requests

from bench.common import OUT, fresh_stack
from bench.fairness import jain, job_times, numbers, submit_together, wait_until_done

ADMIN = {"Authorization": "Bearer local-admin-token"}
WEIGHTS = {"heavy": 2.0, "light": 1.0}
EVEN = ("a", "b", "c")  # phase 2's callers, at the default weight
TOLERANCE = 0.05
JAIN_TARGET, JAIN_WINDOW_S = 0.95, 10.0


def weigh(api: str, caller: str, weight: float) -> None:
    requests.put(f"{api}/api/callers/{caller}", json={"weight": weight}, headers=ADMIN, timeout=30).raise_for_status()


def backlogged(records: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """Jobs finished and admitted per caller while every caller was backlogged, in all and per tenth of the window."""
    start = max(max(r["submitted_at"] for r in rs) for rs in records.values())
    end = min(max(r["admitted_at"] for r in rs) for rs in records.values())
    finished = {c: sum(1 for r in rs if start <= r["finished_at"] <= end) for c, rs in records.items()}
    admitted = {c: sum(1 for r in rs if start <= r["admitted_at"] <= end) for c, rs in records.items()}
    # Where the share drifts, if it does: each caller's finishes per tenth of the window.
    tenth = (end - start) / 10
    slices = {c: [sum(1 for r in rs if start + i * tenth <= r["finished_at"] < start + (i + 1) * tenth)
                  for i in range(10)] for c, rs in records.items()}
    return {"window_s": round(end - start, 2), "finished_in_window": finished,
            "jobs_per_s": {c: round(n / max(end - start, 1e-9), 1) for c, n in finished.items()},
            "admitted_in_window": admitted, "finished_per_tenth_of_window": slices}


def shares(records: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """Phase 1: the heavy caller's jobs finished over the light one's while both were backlogged."""
    figures = backlogged(records)
    finished = figures["finished_in_window"]
    expected = WEIGHTS["heavy"] / WEIGHTS["light"]
    ratio = finished["heavy"] / finished["light"] if finished["light"] else float("inf")
    return {**figures, "ratio": round(ratio, 3), "expected": expected,
            "error_pct": round((ratio / expected - 1) * 100, 1), "met": abs(ratio / expected - 1) <= TOLERANCE}


def evenness(records: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """Phase 2: Jain's index of the callers' jobs finished while all were backlogged."""
    figures = backlogged(records)
    index = round(jain([float(n) for n in figures["finished_in_window"].values()]), 3)
    return {**figures, "jain_index": index,
            "met": index >= JAIN_TARGET and figures["window_s"] >= JAIN_WINDOW_S}


def phase(stack: Any, api: str, sizes: dict[str, int], rng: random.Random) -> dict[str, list[dict[str, float]]]:
    """The callers submit their numbers at the same moment; every job's times once all are done."""
    ids: dict[str, list[str]] = {}
    submit_together(api, numbers(rng, sizes), ids)
    wait_until_done(api, sizes, timeout=3600)
    return job_times(stack, ids)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="1: 6,000 numbers per caller weighted 2:1, then 3,000 per caller of three")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    size, even_size = max(100, int(6_000 * args.scale)), max(100, int(3_000 * args.scale))
    rng = random.Random(2)
    with fresh_stack(args.workers, "weights") as stack:
        api = stack.api_url
        for caller, weight in WEIGHTS.items():
            weigh(api, caller, weight)
        figures = {"per_caller": size, "weights": WEIGHTS, "workers": args.workers,
                   **shares(phase(stack, api, dict.fromkeys(WEIGHTS, size), rng))}
        figures["even"] = {"per_caller": even_size, **evenness(phase(stack, api, dict.fromkeys(EVEN, even_size), rng))}
    verdict = lambda met: "met" if met else "missed"
    print(f"weights 2:1, {size:,} numbers each: over {figures['window_s']} s with both backlogged, heavy finished "
          f"{figures['finished_in_window']['heavy']} and light {figures['finished_in_window']['light']}: "
          f"{figures['ratio']}:1 ({figures['error_pct']:+}%; target 2:1 within 5%: {verdict(figures['met'])})",
          flush=True)
    even = figures["even"]
    print(f"three callers of equal weight, {even_size:,} numbers each: over {even['window_s']} s with all backlogged, "
          f"finished {even['finished_in_window']}: Jain's index {even['jain_index']} (target ≥ {JAIN_TARGET} over "
          f"≥ {JAIN_WINDOW_S:g} s: {verdict(even['met'])})", flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "weights.json").write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
