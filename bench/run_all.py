"""Every benchmark (issues #3, #5, #6, #12, #13 and #14), with its figures against the targets. `--quick` is CI's short form.

The 100,000-request run of the load tool (issue #12) is not part of it: it takes about 13 minutes here. Its
report and chart are in docs/load-100k.json and docs/load-100k.svg.
"""
from __future__ import annotations

import argparse
import json
import time
from typing import Any

from bench import (calls, claims, datalake, factoring, fairness, jobs_list, load, pacing, rate_limits,
                   status_latency, throughput, ways_in, weights)
from bench.common import OUT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs, as CI does")
    args = parser.parse_args()
    quick = args.quick
    runs = {
        "throughput": lambda: throughput.main(["--jobs", "1000" if quick else "5000"]),
        "status_latency": lambda: status_latency.main(["--seconds", "4" if quick else "20"]),
        "pacing": lambda: pacing.main(["--seconds", "15" if quick else "120"]),
        "fairness": lambda: fairness.main(["--scale", "0.05" if quick else "1"]),
        "weights": lambda: weights.main(["--scale", "0.1" if quick else "1"]),
        "ways_in": lambda: ways_in.main(["--jobs", "200", "--rounds", "1"] if quick
                                        else ["--jobs", "10000", "--rounds", "2"]),
        "rate_limits": lambda: rate_limits.main(["--seconds", "10", "--after-change", "5"] if quick else []),
        "load": lambda: load.main(["--n", "300", "--batch-n", "1000"] if quick
                                  else ["--n", "10000", "--batch-n", "10000"]),
        "jobs_list": lambda: jobs_list.main(["--quick"] if quick else []),
        "calls": lambda: calls.main(["--scale", "0.25" if quick else "1"]),
        "factoring": lambda: factoring.main(["--from-digits", "60" if quick else "40"]),
        "datalake": lambda: datalake.main(["--jobs", "1000", "--export-records", "10000"] if quick else []),
        "claims": lambda: claims.main(["--quick"] if quick else []),
    }
    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name, run in runs.items():
        started = time.monotonic()
        results[name] = run()
        seconds[name] = round(time.monotonic() - started, 1)
    verdict = lambda met: "met" if met else "missed"
    two = next(r for r in results["throughput"] if r["workers"] == 2)
    print("\nagainst the targets" + (" (quick form: indicative only)" if quick else ""))
    print(f"  throughput, 2 workers : {two['jobs_per_s']} jobs/s   (target ≥ 300)")
    paced, saturated = results["status_latency"]["paced"], results["status_latency"]["saturated"]
    print(f"  status p99, 50 pollers: {paced['p99_ms']} ms at {paced['per_s']} req/s   (target ≤ 25), "
          f"≥1 s stalls: {paced['over_1s'] + saturated['over_1s']}; saturated: {saturated['per_s']} req/s, "
          f"p99 {saturated['p99_ms']} ms")
    print(f"  pacing 600/min        : {results['pacing']['achieved_per_s']}/s achieved (configured 10/s), "
          f"largest 1 s burst {results['pacing']['largest_1s_burst_processed']}")
    spike = results["fairness"]
    print(f"  fairness, A's spike   : B p95 {spike['B']['ratio']}x alone (target ≤ 2.2), C p95 {spike['C']['ratio']}x "
          f"alone (target ≤ 2); Jain {spike['a_and_b_busy']['jain_index']} A and B busy over "
          f"{spike['a_and_b_busy']['window_s']} s")
    weighed = results["weights"]
    print(f"  weights 2:1           : shares {weighed['ratio']}:1 over {weighed['window_s']} s both backlogged "
          f"(target 2:1 within 5%: {verdict(weighed['met'])})")
    even = weighed["even"]
    print(f"  three callers, even   : Jain {even['jain_index']} over {even['window_s']} s all backlogged "
          f"(target ≥ 0.95 over ≥ 10 s: {verdict(even['met'])})")
    ways, median = results["ways_in"], results["ways_in"]["median_jobs_per_s"]
    print(f"  jobs/s vs paced       : {ways['jobs']:,} jobs each, paced {median['paced']}; fair compute, one caller "
          f"{median['compute']} = {ways['ratio_to_paced']['compute']}x ({verdict(ways['met']['compute'])}); typed, "
          f"latency 0 {median['typed']} = {ways['ratio_to_paced']['typed']}x ({verdict(ways['met']['typed'])}) "
          f"(target ≥ 0.5x)")
    limited = results["rate_limits"]
    print(f"  rate limit 600/min    : {limited['achieved_per_minute']}/min over {limited['seconds']} s "
          f"({limited['error_pct']:+}%, target ±2% over 120 s), largest 1 s {limited['largest_1s']} (target ≤ 11), "
          f"a change bites in {limited['bite_s']} s (target ≤ 2)")
    loaded = results["load"]
    targets = loaded["targets"]["met"]
    print(f"  load, {loaded['requests']} from {loaded['callers']} callers: {loaded['accepted_per_s']} accepted/s "
          f"(≥ 200: {verdict(targets['accepted_per_s'])}), POST p99 {loaded['post_latency_ms'].get('p99')} ms "
          f"(≤ 100: {verdict(targets['post_p99_ms'])}), result p99 {loaded['time_to_result_s'].get('p99')} s, "
          f"errors {loaded['errors'] or 'none'}; batch endpoint {loaded['batch']['accepted_per_s']} numbers/s "
          f"(≥ 2,000: {verdict(targets['batch_numbers_per_s'])})")
    listing = results["jobs_list"]
    print(f"  GET /api/jobs p99     : {listing['p99_ms']} ms (p50 {listing['p50_ms']}, p95 {listing['p95_ms']}) with "
          f"{listing['jobs_stored']:,} jobs, by status, {listing['clients']} clients, {listing['errors']} errors "
          f"(target ≤ 250 ms with 10,000 jobs); with no page shared (PACER_READ_CACHE_S=0) "
          f"{listing['uncached']['p99_ms']} ms")
    for row in results["calls"]:
        print(f"  AWS calls per job     : {row['calls_per_job']} for {row['way_in']} (target ≤ "
              f"{calls.TARGETS[row['way_in']]}; {row['jobs']} jobs, {row['jobs_per_s']} jobs/s)")
    engine = results["factoring"]
    print(f"  factoring             : seed 002's 42 digits in {engine['seed_example_s']} s; largest balanced "
          f"semiprime within {engine['budget_s']:g} s: {engine['largest_digits']} digits ({engine['largest_s']} s)")
    lake = results["datalake"]
    print(f"  datalake lag          : p50 {lake['lag_p50_s']} s, p99 {lake['lag_p99_s']} s at {lake['run_jobs_per_s']} "
          f"jobs/s (target ≤ 5 s); {lake['datalake_records_per_s']} records/s in; export of "
          f"{lake['export_records']:,} records {lake['export_s']} s")
    bot = results["claims"]
    print(f"  bot claims, {bot['bots']} bots : {bot['claims_per_s']} claims/s over {bot['completed']:,} jobs; "
          f"claim-to-complete p50/p95/p99 {'/'.join(str(v) for v in bot['claim_to_complete_ms'].values())} ms")
    print("  seconds per benchmark : " + ", ".join(f"{name} {s:g}" for name, s in seconds.items()))
    OUT.mkdir(exist_ok=True)
    (OUT / ("results-quick.json" if quick else "results.json")).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
