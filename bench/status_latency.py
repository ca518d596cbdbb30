"""GET /api/status latency under concurrent pollers, while a run is going.

Target (issue #3): p99 ≤ 25 ms at 50 concurrent pollers, and no 1-second stalls.
Each poller is a thread with its own keep-alive session, polling back to back:
far harsher than the page's one poll a second.
"""
from __future__ import annotations

import argparse
import threading
import time

import requests

from bench.common import fresh_stack, percentile


def poll(url: str, until: float, samples: list[float], errors: list[str]) -> None:
    session = requests.Session()
    while time.monotonic() < until:
        began = time.perf_counter()
        try:
            response = session.get(url, timeout=10)
            response.raise_for_status()
        except requests.RequestException as exc:
            errors.append(str(exc))
            continue
        samples.append((time.perf_counter() - began) * 1000)


def measure(pollers: int, seconds: float) -> dict:
    with fresh_stack(2, "status-latency") as stack:
        requests.post(f"{stack.api_url}/api/run", json={"x": 600, "y": 1}, timeout=10).raise_for_status()
        url = f"{stack.api_url}/api/status"
        samples: list[float] = []
        errors: list[str] = []
        until = time.monotonic() + seconds
        threads = [threading.Thread(target=poll, args=(url, until, samples, errors)) for _ in range(pollers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        requests.post(f"{stack.api_url}/api/stop", timeout=10)
    return {"pollers": pollers, "requests": len(samples), "errors": len(errors),
            "p50_ms": round(percentile(samples, 50), 1), "p99_ms": round(percentile(samples, 99), 1),
            "max_ms": round(max(samples), 1), "over_1s": sum(1 for s in samples if s >= 1000),
            "per_s": round(len(samples) / seconds)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args(argv)
    row = measure(args.pollers, args.seconds)
    print(f"status latency: {row['pollers']} pollers, {row['requests']} requests ({row['per_s']}/s): "
          f"p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, max {row['max_ms']} ms, "
          f"≥1 s stalls {row['over_1s']}, errors {row['errors']}", flush=True)
    return row


if __name__ == "__main__":
    main()
