"""Load tool for fair compute: N requests from C concurrent callers, with a progress bar (issues #5 and #12).

Each caller is a thread with its own `X-Caller-ID` that POSTs one number at a
time to `/api/compute`. When all are sent, the tool waits for every result.
Then the same callers send `--batch-n` other numbers through
`/api/compute/batch`, `--batch-size` a request, and it waits for those too.
It reports, for each phase:
- accepted/s (202s per second of sending; for batches, numbers accepted per second);
- POST latency p50/p95/p99, as the client saw it;
- time to result p50/p95/p99: the server's `wait_s`, submitted to finished;
- errors, by HTTP status or exception.
Targets (issue #12), with 10 callers: ≥ 200 accepted/s and POST p99 ≤ 100 ms;
the batch endpoint ≥ 2,000 numbers/s accepted.

It writes its report as JSON, with per-second series, to
`bench/out/load-<n>.json`, and a chart of the one-number phase over time
(POST latency, time to result, accepted and finished per second) to
`bench/out/load-<n>.svg`.

    python -m bench.load --n 10000 --callers 10             # starts its own stack
    python -m bench.load --api http://127.0.0.1:8000 --n 500  # a running one (make up)

`--duplicates 0.1` makes a tenth of the one-number requests repeat a number
already sent, to exercise the cache.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import random
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import requests
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench.chart import Panel, Series, svg
from bench.common import OUT, fresh_stack, percentile

TARGETS = {"accepted_per_s": 200, "post_p99_ms": 100, "batch_numbers_per_s": 2000}


def make_numbers(rng: random.Random, count: int, duplicates: float, batch_count: int = 0) -> tuple[list[str], list[str]]:
    """`count` numbers for one-number requests (`duplicates` of them repeats) and `batch_count` others, all distinct."""
    drawn = [str(n) for n in rng.sample(range(10**12, 10**18), count + batch_count)]
    fresh, batched = drawn[:count], drawn[count:]
    return [rng.choice(fresh[:i]) if i and rng.random() < duplicates else fresh[i] for i in range(count)], batched


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class Load:
    """One phase: `chunks` sent by `callers` threads, one chunk a request (one number, or a batch's numbers)."""

    def __init__(self, api: str, chunks: list[list[str]], callers: int, progress: Progress, batch: bool):
        self.api, self.chunks, self.callers, self.progress, self.batch = api, chunks, callers, progress, batch
        self.next = 0
        self.lock = threading.Lock()
        self.posts: list[tuple[float, float, int]] = []  # (answered at, epoch s; latency ms; numbers accepted)
        self.accepted: list[str] = []
        self.errors: Counter = Counter()
        self.error_times: list[float] = []
        self.started_at = 0.0

    def _take(self) -> list[str] | None:
        with self.lock:
            if self.next >= len(self.chunks):
                return None
            self.next += 1
            return self.chunks[self.next - 1]

    def _post(self, session: requests.Session, name: str, chunk: list[str]) -> requests.Response:
        if self.batch:
            return session.post(f"{self.api}/api/compute/batch", json={"numbers": chunk},
                                headers={"X-Caller-ID": name}, timeout=60)
        return session.post(f"{self.api}/api/compute", json={"number": chunk[0]}, headers={"X-Caller-ID": name},
                            timeout=60)

    def caller(self, name: str, task) -> None:
        session = requests.Session()
        while (chunk := self._take()) is not None:
            started = time.perf_counter()
            try:
                response = self._post(session, name, chunk)
                outcome = response.status_code
            except requests.RequestException as exc:
                outcome, response = type(exc).__name__, None
            elapsed, answered = (time.perf_counter() - started) * 1000, time.time()
            with self.lock:
                if outcome == 202:
                    body = response.json()
                    ids = [job["id"] for job in body["jobs"]] if self.batch else [body["id"]]
                    self.posts.append((answered, elapsed, len(ids)))
                    self.accepted += ids
                else:
                    self.errors[str(outcome)] += 1
                    self.error_times.append(answered)
            self.progress.advance(task, len(chunk))

    def send(self) -> float:
        task = self.progress.add_task("batches" if self.batch else "sending", total=sum(map(len, self.chunks)))
        self.started_at, started = time.time(), time.perf_counter()
        threads = [threading.Thread(target=self.caller, args=(f"load-{i}", task)) for i in range(self.callers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started

    def results(self, timeout: float) -> tuple[list[dict[str, Any]], Counter]:
        """Each accepted request's view once all are finished (or the timeout passes)."""
        task = self.progress.add_task("results", total=len(self.accepted))
        waiting, finished, statuses = list(self.accepted), [], Counter()
        deadline = time.monotonic() + timeout
        with ThreadPoolExecutor(8) as pool, requests.Session() as session:
            while waiting and time.monotonic() < deadline:
                views = pool.map(lambda i: session.get(f"{self.api}/api/compute/{i}", timeout=30).json(), waiting)
                still = []
                for view in views:
                    if view["status"] in ("done", "failed"):
                        finished.append(view)
                        statuses[view["status"]] += 1
                        self.progress.advance(task)
                    else:
                        still.append(view["id"])
                waiting = still
                if waiting:
                    time.sleep(0.5)
        if waiting:
            statuses["unfinished"] = len(waiting)
        return finished, statuses


def summary(values: list[float], digits: int) -> dict:
    if not values:
        return {}
    return {f"p{p}": round(percentile(values, p), digits) for p in (50, 95, 99)}


def per_second(load: Load, finished: list[dict[str, Any]]) -> dict[str, list]:
    """Per whole second since the first request: numbers accepted, POSTs answered and their latency p50/p99 (ms),
    results finished, the time to result p50/p99 (s) of the requests submitted in that second, errors."""
    start = load.started_at
    posts, accepted, waits = defaultdict(list), Counter(), defaultdict(list)
    for answered, ms, count in load.posts:
        posts[int(answered - start)].append(ms)
        accepted[int(answered - start)] += count
    done = Counter(int(epoch(v["finished_at"]) - start) for v in finished if v.get("finished_at"))
    for view in finished:
        if view.get("wait_s") is not None:
            waits[int(epoch(view["submitted_at"]) - start)].append(view["wait_s"])
    errors = Counter(int(at - start) for at in load.error_times)
    seconds = range(0, max([*posts, *done, *errors, 0]) + 1)
    pick = lambda table, p, digits: [round(percentile(table[s], p), digits) if table.get(s) else None for s in seconds]
    return {"second": list(seconds), "accepted": [accepted[s] for s in seconds],
            "posts": [len(posts.get(s, ())) for s in seconds],
            "post_p50_ms": pick(posts, 50, 1), "post_p99_ms": pick(posts, 99, 1),
            "finished": [done[s] for s in seconds],
            "wait_p50_s": pick(waits, 50, 2), "wait_p99_s": pick(waits, 99, 2),
            "errors": [errors[s] for s in seconds]}


def phase(api: str, chunks: list[list[str]], callers: int, progress: Progress, batch: bool,
          timeout: float) -> tuple[dict[str, Any], dict[str, list]]:
    load = Load(api, chunks, callers, progress, batch)
    sending_s = load.send()
    finished, statuses = load.results(timeout)
    last = max((epoch(v["finished_at"]) for v in finished if v.get("finished_at")), default=time.time())
    figures = {
        "requests": len(chunks), "numbers": sum(map(len, chunks)), "callers": callers,
        "accepted": len(load.accepted), "sending_s": round(sending_s, 2),
        "accepted_per_s": round(len(load.accepted) / sending_s, 1),
        "post_latency_ms": summary([ms for _, ms, _ in load.posts], 1),
        "time_to_result_s": summary([v["wait_s"] for v in finished if v.get("wait_s") is not None], 2),
        "end_to_end_s": round(last - load.started_at, 1),
        "results": dict(statuses),
        "errors": dict(load.errors),
    }
    return figures, per_second(load, finished)


def run(api: str, args) -> tuple[dict[str, Any], dict[str, Any]]:
    singles, batched = make_numbers(random.Random(args.seed), args.n, args.duplicates, args.batch_n)
    columns = (TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        figures, series = phase(api, [[n] for n in singles], args.callers, progress, False, args.timeout)
        figures["duplicates"] = args.duplicates
        if batched:
            chunks = [batched[i : i + args.batch_size] for i in range(0, len(batched), args.batch_size)]
            figures["batch"], batch_series = phase(api, chunks, args.callers, progress, True, args.timeout)
            figures["batch"]["batch_size"] = args.batch_size
    met = {"accepted_per_s": figures["accepted_per_s"] >= TARGETS["accepted_per_s"],
           "post_p99_ms": figures["post_latency_ms"].get("p99", float("inf")) <= TARGETS["post_p99_ms"]}
    if batched:
        met["batch_numbers_per_s"] = figures["batch"]["accepted_per_s"] >= TARGETS["batch_numbers_per_s"]
    figures["targets"] = {"at_callers": 10, **TARGETS, "met": met}
    return figures, {"single": series, **({"batch": batch_series} if batched else {})}


def chart(figures: dict[str, Any], series: dict[str, list]) -> str:
    at = lambda name: list(zip(series["second"], series[name]))
    title = (f"bench/load.py: {figures['requests']:,} requests, one number each, from {figures['callers']} callers"
             f" — {figures['accepted_per_s']} accepted/s, POST p99 {figures['post_latency_ms'].get('p99')} ms, "
             f"errors {sum(figures['errors'].values())}")
    throughput = [Series("accepted/s", at("accepted")), Series("results finished/s", at("finished"))]
    if any(series["errors"]):
        throughput.append(Series("errors/s", at("errors")))
    return svg(title, [
        Panel("POST latency, ms", [Series("p50", at("post_p50_ms")), Series("p99", at("post_p99_ms"))]),
        Panel("time to result, s (by second sent)", [Series("p50", at("wait_p50_s")), Series("p99", at("wait_p99_s"))]),
        Panel("per second", throughput),
    ])


def report_json(figures: dict[str, Any], series: dict[str, Any]) -> str:
    """The figures, indented, and the per-second series, one line each: an hour of seconds stays readable."""
    head = json.dumps(figures, indent=2)
    tables = ",\n".join(f'    "{phase}": {{\n' + ",\n".join(f'      "{name}": {json.dumps(values)}'
                                                            for name, values in table.items()) + "\n    }"
                        for phase, table in series.items())
    return head[: head.rindex("}")].rstrip() + ',\n  "per_second": {\n' + tables + "\n  }\n}\n"


def report(figures: dict) -> None:
    table = Table(title=f"{figures['requests']} requests from {figures['callers']} callers")
    table.add_column("measure")
    table.add_column("one number per POST", justify="right")
    batch = figures.get("batch")
    if batch:
        table.add_column(f"batches of {batch['batch_size']}", justify="right")
    phases = [figures, *([batch] if batch else [])]
    row = lambda name, cell: table.add_row(name, *(cell(p) for p in phases))
    row("accepted/s (numbers)", lambda p: str(p["accepted_per_s"]))
    for name, unit in (("post_latency_ms", "ms"), ("time_to_result_s", "s")):
        for p in ("p50", "p95", "p99"):
            row(f"{name.split('_')[0]} {p}", lambda ph: f"{ph[name].get(p)} {unit}")
    row("end to end", lambda p: f"{p['end_to_end_s']} s")
    row("results", lambda p: json.dumps(p["results"]))
    row("errors", lambda p: json.dumps(p["errors"]) if p["errors"] else "none")
    Console().print(table)
    met = figures["targets"]["met"]
    verdict = lambda ok: "met" if ok else "missed"
    print(f"targets at 10 callers: accepted/s {figures['accepted_per_s']} (≥ 200: {verdict(met['accepted_per_s'])}), "
          f"POST p99 {figures['post_latency_ms'].get('p99')} ms (≤ 100: {verdict(met['post_p99_ms'])})"
          + (f", batch {batch['accepted_per_s']} numbers/s (≥ 2,000: {verdict(met['batch_numbers_per_s'])})"
             if batch else ""), flush=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="one-number requests to send")
    parser.add_argument("--callers", type=int, default=10, help="concurrent callers, one thread each")
    parser.add_argument("--duplicates", type=float, default=0.0, help="share of requests repeating a number")
    parser.add_argument("--batch-n", type=int, default=10_000, help="numbers to send through the batch endpoint (0: none)")
    parser.add_argument("--batch-size", type=int, default=100, help="numbers per batch request (at most 100)")
    parser.add_argument("--api", help="a running API; without it the tool starts a fresh stack")
    parser.add_argument("--workers", type=int, default=2, help="job workers of the stack it starts")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for each phase's results")
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        api = args.api or stack.enter_context(fresh_stack(args.workers, "load")).api_url
        figures, series = run(api.rstrip("/"), args)
    report(figures)
    OUT.mkdir(exist_ok=True)
    (OUT / f"load-{args.n}.json").write_text(report_json(figures, series))
    (OUT / f"load-{args.n}.svg").write_text(chart(figures, series["single"]))
    print(f"report: {OUT / f'load-{args.n}.json'}, chart: {OUT / f'load-{args.n}.svg'}")
    return figures


if __name__ == "__main__":
    main()
