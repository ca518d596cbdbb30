"""Fair compute under a spike: callers with backlogs of 10,000, 1,000 and 10 numbers (issue #5).

Prints, for B and C, the p95 completion time (submitted to finished) under A's
spike and alone, and Jain's fairness index of per-caller throughput over the
time all three were backlogged. Targets: p95 ratio <= 2, Jain >= 0.95.
`--scale 0.1` runs 1,000/100/1 for a quick look.
"""
from __future__ import annotations

import argparse
import json
import random
import time

import requests

from bench.common import OUT, fresh_stack


def submit(api: str, caller: str, numbers: list[str]) -> None:
    for offset in range(0, len(numbers), 100):
        response = requests.post(f"{api}/api/compute/batch", json={"numbers": numbers[offset : offset + 100]},
                                 headers={"X-Caller-ID": caller}, timeout=60)
        response.raise_for_status()


def callers(api: str) -> dict[str, dict]:
    return {c["caller"]: c for c in requests.get(f"{api}/api/callers", timeout=10).json()["callers"]}


def numbers(rng: random.Random, count: int) -> list[str]:
    return [str(n) for n in rng.sample(range(10**15, 10**18), count)]


def run_until_done(api: str, sizes: dict[str, int], timeout: float) -> list[tuple[float, dict[str, dict]]]:
    samples = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = callers(api)
        samples.append((time.monotonic(), now))
        if all(now.get(c, {}).get("done", 0) + now.get(c, {}).get("failed", 0) >= n for c, n in sizes.items()):
            return samples
        time.sleep(0.5)
    raise TimeoutError(f"not done after {timeout}s: {samples[-1][1]}")


def jain(values: list[float]) -> float:
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values)) if any(values) else 0.0


def has_work(sample: dict, caller: str) -> bool:
    return sample.get(caller, {}).get("backlog", 0) + sample.get(caller, {}).get("in_flight", 0) > 0


def backlogged_throughput(samples, names: list[str]) -> dict[str, float]:
    """Jobs done per second by each caller over the longest prefix where the same callers all had work.

    C's 10 jobs may be done before a second sample (0.5 s apart), so the set is
    the callers still busy at the second sample, and the window ends when the
    first of them runs dry.
    """
    if len(samples) < 3:
        return {}
    busy = [c for c in names if has_work(samples[1][1], c)]
    window = [(t, s) for t, s in samples[1:]]
    end = next((i for i, (_, s) in enumerate(window) if not all(has_work(s, c) for c in busy)), len(window))
    window = window[:end]
    if len(window) < 2 or not busy:
        return {}
    (t0, first), (t1, last) = window[0], window[-1]
    return {c: (last[c]["done"] - first[c]["done"]) / max(t1 - t0, 1e-9) for c in busy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rng = random.Random(20261123)
    sizes = {"A": max(1, int(10_000 * args.scale)), "B": max(1, int(1_000 * args.scale)), "C": max(1, int(10 * args.scale))}
    figures: dict = {"sizes": sizes, "workers": args.workers}
    with fresh_stack(args.workers, "fairness") as stack:
        api = stack.api_url
        alone = {}
        for name in ("B", "C"):
            caller = f"{name}-alone"
            submit(api, caller, numbers(rng, sizes[name]))
            run_until_done(api, {caller: sizes[name]}, timeout=3600)
            alone[name] = callers(api)[caller]["p95_wait_s"]
        started = time.monotonic()
        for name in ("A", "B", "C"):
            submit(api, name, numbers(rng, sizes[name]))
        samples = run_until_done(api, sizes, timeout=4 * 3600)
        final = callers(api)
        figures["spike_wall_s"] = round(time.monotonic() - started, 1)
        for name in ("B", "C"):
            spiked = final[name]["p95_wait_s"]
            figures[name] = {"p95_alone_s": alone[name], "p95_under_spike_s": spiked,
                             "ratio": round(spiked / alone[name], 2) if alone[name] else None}
        rates = backlogged_throughput(samples, ["A", "B", "C"])
        figures["backlogged_jobs_per_s"] = {c: round(r, 2) for c, r in rates.items()}
        figures["jain_index"] = round(jain(list(rates.values())), 3) if rates else None
    print(json.dumps(figures, indent=2))
    OUT.mkdir(exist_ok=True)
    (OUT / "fairness.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
