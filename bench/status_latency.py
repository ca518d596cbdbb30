"""GET /api/status latency with 50 concurrent pollers, while a run is going.

Target (issue #3): p99 ≤ 25 ms at 50 concurrent pollers, and no 1-second stalls.

Two measurements:
- paced: each poller is a keep-alive connection polling every `--interval`
  seconds (the page polls once a second; the default of 0.2 s is five times
  harsher), started at staggered offsets like independent browsers;
- saturated: the same pollers back to back with no pause, which measures
  how many requests a second the server sustains. With 50 requests always
  outstanding, its latency is queueing (50 / throughput), so it is reported
  as a capacity figure, not against the target.
The pollers are threads in one process sharing the 2 cores with the server,
so both figures include the client's own cost.
"""
from __future__ import annotations

import argparse
import http.client
import threading
import time

import requests

from bench.common import fresh_stack, percentile


def poll(port: int, until: float, interval: float, offset: float, samples: list[float], errors: list[str]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    next_at = time.monotonic() + offset
    while True:
        if interval:
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            next_at += interval
        if time.monotonic() >= until:
            return
        began = time.perf_counter()
        try:
            connection.request("GET", "/api/status")
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                errors.append(str(response.status))
                continue
        except (OSError, http.client.HTTPException) as exc:
            errors.append(str(exc))
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        samples.append((time.perf_counter() - began) * 1000)


def run_pollers(port: int, pollers: int, seconds: float, interval: float) -> dict:
    samples: list[float] = []
    errors: list[str] = []
    until = time.monotonic() + seconds
    threads = [threading.Thread(target=poll, args=(port, until, interval, interval * i / pollers, samples, errors))
               for i in range(pollers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"requests": len(samples), "per_s": round(len(samples) / seconds), "errors": len(errors),
            "p50_ms": round(percentile(samples, 50), 2), "p99_ms": round(percentile(samples, 99), 2),
            "max_ms": round(max(samples), 1), "over_1s": sum(1 for s in samples if s >= 1000)}


def measure(pollers: int, seconds: float, interval: float) -> dict:
    with fresh_stack(2, "status-latency") as stack:
        requests.post(f"{stack.api_url}/api/run", json={"x": 600, "y": 1}, timeout=10).raise_for_status()
        paced = run_pollers(stack.api_port, pollers, seconds, interval)
        saturated = run_pollers(stack.api_port, pollers, seconds, 0)
        requests.post(f"{stack.api_url}/api/stop", timeout=10)
    return {"pollers": pollers, "interval_s": interval, "paced": paced, "saturated": saturated}


def describe(row: dict) -> str:
    return (f"{row['requests']} requests ({row['per_s']}/s): p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, "
            f"max {row['max_ms']} ms, ≥1 s stalls {row['over_1s']}, errors {row['errors']}")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between one poller's requests")
    args = parser.parse_args(argv)
    result = measure(args.pollers, args.seconds, args.interval)
    print(f"status latency, {args.pollers} pollers every {args.interval} s: {describe(result['paced'])}", flush=True)
    print(f"status latency, {args.pollers} pollers back to back: {describe(result['saturated'])}", flush=True)
    return result


if __name__ == "__main__":
    main()
