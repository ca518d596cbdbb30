"""Load tool for fair compute: N requests from C concurrent callers, with a progress bar (issue #5).

Each caller is a thread with its own `X-Caller-ID` that POSTs one number at a
time to `/api/compute`. When all are sent, the tool waits for every result.
It reports:
- accepted/s (202s per second of sending);
- POST latency p50/p95/p99, as the client saw it;
- time to result p50/p95/p99: the server's `wait_s`, submitted to finished;
- errors, by HTTP status or exception.

    python -m bench.load --n 10000 --callers 10             # starts its own stack
    python -m bench.load --api http://127.0.0.1:8000 --n 500  # a running one (make up)

`--duplicates 0.1` makes a tenth of the requests repeat a number already
sent, to exercise the cache.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.common import OUT, fresh_stack, percentile


def make_numbers(rng: random.Random, count: int, duplicates: float) -> list[str]:
    fresh = [str(n) for n in rng.sample(range(10**12, 10**18), count)]
    return [rng.choice(fresh[:i]) if i and rng.random() < duplicates else fresh[i] for i in range(count)]


class Load:
    def __init__(self, api: str, numbers: list[str], callers: int, progress: Progress):
        self.api, self.numbers, self.callers, self.progress = api, numbers, callers, progress
        self.next = 0
        self.lock = threading.Lock()
        self.post_ms: list[float] = []
        self.accepted: list[str] = []
        self.errors: Counter = Counter()

    def _take(self) -> str | None:
        with self.lock:
            if self.next >= len(self.numbers):
                return None
            self.next += 1
            return self.numbers[self.next - 1]

    def caller(self, name: str, task) -> None:
        session = requests.Session()
        while (number := self._take()) is not None:
            started = time.perf_counter()
            try:
                response = session.post(f"{self.api}/api/compute", json={"number": number},
                                        headers={"X-Caller-ID": name}, timeout=60)
                outcome = response.status_code
            except requests.RequestException as exc:
                outcome, response = type(exc).__name__, None
            elapsed = (time.perf_counter() - started) * 1000
            with self.lock:
                if outcome == 202:
                    self.post_ms.append(elapsed)
                    self.accepted.append(response.json()["id"])
                else:
                    self.errors[str(outcome)] += 1
            self.progress.advance(task)

    def send(self) -> float:
        task = self.progress.add_task("sending", total=len(self.numbers))
        started = time.perf_counter()
        threads = [threading.Thread(target=self.caller, args=(f"load-{i}", task)) for i in range(self.callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started

    def results(self, timeout: float) -> tuple[list[float], Counter]:
        """Each accepted request's wait (submitted to finished, by the server's clock), once all are finished."""
        task = self.progress.add_task("results", total=len(self.accepted))
        waiting, waits, statuses = list(self.accepted), {}, Counter()
        deadline = time.monotonic() + timeout
        with ThreadPoolExecutor(8) as pool, requests.Session() as session:
            while waiting and time.monotonic() < deadline:
                views = pool.map(lambda i: session.get(f"{self.api}/api/compute/{i}", timeout=30).json(), waiting)
                still = []
                for view in views:
                    if view["status"] in ("done", "failed"):
                        waits[view["id"]] = view["wait_s"]
                        statuses[view["status"]] += 1
                        self.progress.advance(task)
                    else:
                        still.append(view["id"])
                waiting = still
                if waiting:
                    time.sleep(0.5)
        if waiting:
            statuses["unfinished"] = len(waiting)
        return list(waits.values()), statuses


def summary(values: list[float]) -> dict:
    if not values:
        return {}
    return {f"p{p}": round(percentile(values, p), 3) for p in (50, 95, 99)}


def run(api: str, args) -> dict:
    numbers = make_numbers(random.Random(args.seed), args.n, args.duplicates)
    columns = (TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        load = Load(api, numbers, args.callers, progress)
        sending_s = load.send()
        waits, statuses = load.results(args.timeout)
    return {
        "requests": args.n, "callers": args.callers, "duplicates": args.duplicates,
        "accepted": len(load.accepted), "sending_s": round(sending_s, 2),
        "accepted_per_s": round(len(load.accepted) / sending_s, 1),
        "post_latency_ms": summary(load.post_ms),
        "time_to_result_s": summary(waits),
        "results": dict(statuses),
        "errors": dict(load.errors),
    }


def report(figures: dict) -> None:
    table = Table(title=f"{figures['requests']} requests from {figures['callers']} callers")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("accepted/s", str(figures["accepted_per_s"]))
    for name, unit in (("post_latency_ms", "ms"), ("time_to_result_s", "s")):
        for p, value in figures[name].items():
            table.add_row(f"{name.split('_')[0]} {p}", f"{value} {unit}")
    table.add_row("results", json.dumps(figures["results"]))
    table.add_row("errors", json.dumps(figures["errors"]) if figures["errors"] else "none")
    Console().print(table)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="requests to send")
    parser.add_argument("--callers", type=int, default=10, help="concurrent callers, one thread each")
    parser.add_argument("--duplicates", type=float, default=0.0, help="share of requests repeating a number")
    parser.add_argument("--api", help="a running API; without it the tool starts a fresh stack")
    parser.add_argument("--workers", type=int, default=2, help="job workers of the stack it starts")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for all results")
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        api = args.api or stack.enter_context(fresh_stack(args.workers, "load")).api_url
        figures = run(api.rstrip("/"), args)
    report(figures)
    OUT.mkdir(exist_ok=True)
    (OUT / "load.json").write_text(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
