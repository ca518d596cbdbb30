"""Pacing accuracy: x jobs per y minutes for a while; the rate achieved and the largest 1-second burst.

Issue #3 asks for x=600, y=1 for 2 minutes. Per-second counts come from the
run's throughput buckets in DynamoDB (enqueued at the tick, processed at the worker).
"""
from __future__ import annotations

import argparse
import statistics
import time

import requests

from bench.common import dynamodb, fresh_stack, wait_for
from chalicelib.resources import STATE_TABLE


def per_second(stack, run_id: str) -> dict[int, dict[str, int]]:
    items, kwargs = [], {}
    while True:
        page = dynamodb(stack).query(
            TableName=STATE_TABLE.name, KeyConditionExpression="pk = :pk AND begins_with(sk, :t)",
            ExpressionAttributeValues={":pk": {"S": f"RUN#{run_id}"}, ":t": {"S": "T#"}}, **kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    return {int(i["sk"]["S"][2:]): {k: int(i.get(k, {"N": "0"})["N"]) for k in ("enqueued", "processed")} for i in items}


def measure(x: int, y: float, seconds: float) -> dict:
    with fresh_stack(2, "pacing") as stack:
        run = requests.post(f"{stack.api_url}/api/run", json={"x": x, "y": y}, timeout=10).json()
        time.sleep(seconds)
        stopped = requests.post(f"{stack.api_url}/api/stop", timeout=10).json()
        wait_for(stack, lambda s: s["in_flight"] == 0, timeout=120)
        buckets = per_second(stack, run["run_id"])
    first, last = min(buckets), max(buckets)
    # Whole seconds strictly inside the run: the first and last are partial.
    inner = range(first + 1, last)
    processed = [buckets.get(t, {}).get("processed", 0) for t in inner]
    enqueued = [buckets.get(t, {}).get("enqueued", 0) for t in inner]
    configured = x / y / 60
    return {"x": x, "y": y, "seconds": seconds, "configured_per_s": round(configured, 2),
            "enqueued": stopped["enqueued"], "achieved_per_s": round(stopped["enqueued"] / seconds, 2),
            "processed_mean_per_s": round(statistics.mean(processed), 2),
            "largest_1s_burst_processed": max(processed), "largest_1s_burst_enqueued": max(enqueued),
            "stdev_processed_per_s": round(statistics.pstdev(processed), 2)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--x", type=int, default=600)
    parser.add_argument("--y", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=120)
    args = parser.parse_args(argv)
    row = measure(args.x, args.y, args.seconds)
    print(f"pacing: x={row['x']} y={row['y']} for {row['seconds']} s: configured {row['configured_per_s']}/s, "
          f"achieved {row['achieved_per_s']}/s enqueued ({row['processed_mean_per_s']}/s processed per whole second), "
          f"largest 1 s burst {row['largest_1s_burst_processed']} processed / {row['largest_1s_burst_enqueued']} enqueued, "
          f"stdev {row['stdev_processed_per_s']}/s", flush=True)
    return row


if __name__ == "__main__":
    main()
