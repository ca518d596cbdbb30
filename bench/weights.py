"""Weighted fair compute: two callers weighted 2:1, both backlogged, share the workers 2:1 (issue 12).

Target: with weights 2:1 the shares come out 2:1 within 5% (a ratio of
1.9 to 2.1). One stack, 2 workers. Caller `heavy` is weighted 2 and
`light` 1 (`PUT /api/callers/{caller}`, admin token) before either submits;
then both submit the same number of distinct numbers at the same moment,
through `/api/compute/batch`. For every job the benchmark reads, from
DynamoDB, when it was submitted, admitted and finished.

The window in which both are backlogged runs from the later of the two
callers' last submit (both backlogs are whole) to the earlier of their last
admission (after it, one caller has nothing left to admit). It prints the
jobs each caller finished in that window, their ratio, and whether it is
within 5% of 2.

`--scale 0.25` (1,500 numbers each) is CI's quick form; the default is 6,000 each.
"""
from __future__ import annotations

import argparse
import json
import random
import threading
from typing import Any

import requests

from bench.common import OUT, fresh_stack
from bench.fairness import job_times, numbers, submit, wait_until_done

ADMIN = {"Authorization": "Bearer local-admin-token"}
WEIGHTS = {"heavy": 2.0, "light": 1.0}
TOLERANCE = 0.05


def weigh(api: str, caller: str, weight: float) -> None:
    requests.put(f"{api}/api/callers/{caller}", json={"weight": weight}, headers=ADMIN, timeout=30).raise_for_status()


def shares(records: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """Jobs finished per caller while every caller was backlogged, and the heavy caller's over the light one's."""
    start = max(max(r["submitted_at"] for r in rs) for rs in records.values())
    end = min(max(r["admitted_at"] for r in rs) for rs in records.values())
    finished = {c: sum(1 for r in rs if start <= r["finished_at"] <= end) for c, rs in records.items()}
    admitted = {c: sum(1 for r in rs if start <= r["admitted_at"] <= end) for c, rs in records.items()}
    # Where the share drifts, if it does: each caller's finishes per tenth of the window.
    tenth = (end - start) / 10
    slices = {c: [sum(1 for r in rs if start + i * tenth <= r["finished_at"] < start + (i + 1) * tenth)
                  for i in range(10)] for c, rs in records.items()}
    expected = WEIGHTS["heavy"] / WEIGHTS["light"]
    ratio = finished["heavy"] / finished["light"] if finished["light"] else float("inf")
    return {"window_s": round(end - start, 2), "finished_in_window": finished,
            "jobs_per_s": {c: round(n / max(end - start, 1e-9), 1) for c, n in finished.items()},
            "admitted_in_window": admitted, "finished_per_tenth_of_window": slices,
            "ratio": round(ratio, 3), "expected": expected, "error_pct": round((ratio / expected - 1) * 100, 1),
            "met": abs(ratio / expected - 1) <= TOLERANCE}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="1: 6,000 numbers per caller")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    size = max(100, int(6_000 * args.scale))
    sizes = {caller: size for caller in WEIGHTS}
    with fresh_stack(args.workers, "weights") as stack:
        api = stack.api_url
        for caller, weight in WEIGHTS.items():
            weigh(api, caller, weight)
        sent = numbers(random.Random(2), sizes)
        ids: dict[str, list[str]] = {}
        arrivals = [threading.Thread(target=lambda c=c: ids.__setitem__(c, submit(api, c, sent[c]))) for c in sizes]
        for thread in arrivals:
            thread.start()
        for thread in arrivals:
            thread.join()
        wait_until_done(api, sizes, timeout=3600)
        figures = {"per_caller": size, "weights": WEIGHTS, "workers": args.workers, **shares(job_times(stack, ids))}
    verdict = "met" if figures["met"] else "missed"
    print(f"weights 2:1, {size:,} numbers each: over {figures['window_s']} s with both backlogged, heavy finished "
          f"{figures['finished_in_window']['heavy']} and light {figures['finished_in_window']['light']}: "
          f"{figures['ratio']}:1 ({figures['error_pct']:+}%; target 2:1 within 5%: {verdict})", flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "weights.json").write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
