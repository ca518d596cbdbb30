"""Rate limits on typed jobs: a limit holds, evenly, and a change bites fast (issue 12).

One stack, 2 workers, executors without latency. `email` is limited to
`--per-minute` (600) while emails are submitted at 2.5 times that, evenly,
so its backlog grows throughout. After `--seconds` the limit is doubled
live. Each job's start (the worker's `started_at` in its result) is counted
per wall-clock second:

- the rate achieved over the whole seconds of the first phase, against the
  limit (target: within ±2% over 2 minutes);
- the largest 1-second count (target: ≤ 11 at 600 a minute);
- how long after the change the doubled rate shows: from the change to the
  end of the first second that reaches 90% of the new limit (target ≤ 2 s).
"""
from __future__ import annotations

import argparse
import math
import threading
import time
from typing import Any

import requests

from bench.common import dynamodb, fresh_stack
from chalicelib.aws.codec import from_item
from chalicelib.resources import RESULTS_TABLE

ADMIN = {"Authorization": "Bearer local-admin-token"}
EMAIL = {"type": "email", "payload": {"to": "ann@example.com", "subject": "Hi", "body": "Hello"}}


def set_limit(api: str, per_minute: float | None) -> None:
    requests.put(f"{api}/api/jobs/limits", json={"type": "email", "per_minute": per_minute}, headers=ADMIN,
                 timeout=10).raise_for_status()


def feed(api: str, per_s: float, stop: threading.Event) -> int:
    """Submit emails from 4 callers at `per_s`, evenly, until `stop`; how many were submitted."""
    submitted, began = 0, time.monotonic()
    with requests.Session() as session:
        while not stop.is_set():
            session.post(f"{api}/api/jobs", json=EMAIL, headers={"X-Caller-ID": f"caller-{submitted % 4}"},
                         timeout=60).raise_for_status()
            submitted += 1
            stop.wait(max(0.0, began + submitted / per_s - time.monotonic()))
    return submitted


def starts(db: Any) -> list[float]:
    """When each settled typed job's (last) attempt started."""
    found, page = [], {}
    while True:
        response = db.scan(TableName=RESULTS_TABLE.name, **page)
        found += [from_item(item) for item in response["Items"]]
        if "LastEvaluatedKey" not in response:
            break
        page = {"ExclusiveStartKey": response["LastEvaluatedKey"]}
    return [float(item["started_at"]) for item in found if item.get("origin") == "typed" and item.get("started_at")]


def measure(per_minute: float, seconds: float, after_change_s: float) -> dict[str, Any]:
    with fresh_stack(2, "rate_limits", env={"PACER_EXECUTOR_LATENCY_S": "0"}) as stack:
        api, db = stack.api_url, dynamodb(stack)
        set_limit(api, per_minute)
        stop = threading.Event()
        # Twice the limit, then (after the change) a little over the doubled one: the backlog never runs dry.
        feeder = threading.Thread(target=feed, args=(api, per_minute / 60 * 2.5, stop), daemon=True)
        feeder.start()
        time.sleep(seconds)
        changed_at = time.time()
        set_limit(api, per_minute * 2)
        time.sleep(after_change_s)
        stop.set()
        set_limit(api, None)
        feeder.join(timeout=60)
        time.sleep(5)  # the backlog drains, unlimited
        started = starts(db)
    per_second: dict[int, int] = {}
    for at in started:
        per_second[math.floor(at)] = per_second.get(math.floor(at), 0) + 1
    first = min(per_second)
    # The first phase's whole seconds, from the first second with a start to the last whole second before the change.
    phase = range(first + 1, math.floor(changed_at))
    counts = [per_second.get(s, 0) for s in phase]
    achieved = sum(counts) / len(counts) * 60
    doubled = per_minute * 2 / 60
    bite = next((s + 1 - changed_at for s in range(math.floor(changed_at), math.floor(changed_at + after_change_s))
                 if per_second.get(s, 0) >= 0.9 * doubled), None)
    return {"per_minute": per_minute, "seconds": len(counts), "achieved_per_minute": round(achieved, 1),
            "error_pct": round((achieved - per_minute) / per_minute * 100, 2), "largest_1s": max(counts),
            "smallest_1s": min(counts), "per_s": counts, "bite_s": None if bite is None else round(bite, 2),
            "after_change_per_s": [per_second.get(s, 0) for s in range(math.floor(changed_at) - 1,
                                                                      math.floor(changed_at + after_change_s))]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-minute", type=float, default=600)
    parser.add_argument("--seconds", type=float, default=120, help="the first phase, at the limit")
    parser.add_argument("--after-change", type=float, default=10, help="the second phase, at twice the limit")
    args = parser.parse_args(argv)
    row = measure(args.per_minute, args.seconds, args.after_change)
    print(f"rate limit {row['per_minute']:g}/min on email: {row['achieved_per_minute']}/min achieved over "
          f"{row['seconds']} whole seconds ({row['error_pct']:+}%, target ±2%), 1 s counts {row['smallest_1s']}–"
          f"{row['largest_1s']} (target ≤ 11 at 600/min); doubled live: bites in {row['bite_s']} s (target ≤ 2); "
          f"per second around the change: {row['after_change_per_s']}")
    print(f"  per second before the change: {row['per_s']}")
    return row


if __name__ == "__main__":
    main()
