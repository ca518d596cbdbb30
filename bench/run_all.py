"""Every benchmark (issues #3, #5, #6, #12 and #13), with its figures against the targets. `--quick` is CI's short form."""
from __future__ import annotations

import argparse
import json

from bench import calls, datalake, factoring, fairness, jobs_list, load, pacing, status_latency, throughput
from bench.common import OUT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter runs, as CI does")
    args = parser.parse_args()
    quick = args.quick
    results = {
        "throughput": throughput.main(["--jobs", "1000" if quick else "5000"]),
        "status_latency": status_latency.main(["--seconds", "4" if quick else "20"]),
        "pacing": pacing.main(["--seconds", "15" if quick else "120"]),
        "fairness": fairness.main(["--scale", "0.05" if quick else "1"]),
        "load": load.main(["--n", "300" if quick else "10000", "--callers", "10"]),
        "jobs_list": jobs_list.main(["--quick"] if quick else []),
        "calls": calls.main(["--scale", "0.25" if quick else "1"]),
        "factoring": factoring.main(["--from-digits", "60" if quick else "40"]),
        "datalake": datalake.main(["--jobs", "1000", "--export-records", "10000"] if quick else []),
    }
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
    print(f"  fairness, A's spike   : B p95 {spike['B']['ratio']}x alone, C p95 {spike['C']['ratio']}x alone "
          f"(target ≤ 2); Jain {spike['all_three_busy']['jain_index']} all three busy, "
          f"{spike['a_and_b_busy']['jain_index']} A and B busy (target ≥ 0.95)")
    loaded = results["load"]
    print(f"  load, {loaded['requests']} from {loaded['callers']} callers: {loaded['accepted_per_s']} accepted/s, "
          f"POST p99 {loaded['post_latency_ms'].get('p99')} ms, result p99 {loaded['time_to_result_s'].get('p99')} s, "
          f"errors {loaded['errors'] or 'none'}")
    listing = results["jobs_list"]
    print(f"  GET /api/jobs p99     : {listing['p99_ms']} ms (p50 {listing['p50_ms']}, p95 {listing['p95_ms']}) with "
          f"{listing['jobs_stored']:,} jobs, by status, {listing['clients']} clients, {listing['errors']} errors")
    for row in results["calls"]:
        print(f"  AWS calls per job     : {row['calls_per_job']} for {row['way_in']} ({row['jobs']} jobs, "
              f"{row['jobs_per_s']} jobs/s)")
    engine = results["factoring"]
    print(f"  factoring             : seed 002's 42 digits in {engine['seed_example_s']} s; largest balanced "
          f"semiprime within {engine['budget_s']:g} s: {engine['largest_digits']} digits ({engine['largest_s']} s)")
    lake = results["datalake"]
    print(f"  datalake lag          : p50 {lake['lag_p50_s']} s, p99 {lake['lag_p99_s']} s at {lake['run_jobs_per_s']} "
          f"jobs/s (target ≤ 5 s); {lake['datalake_records_per_s']} records/s in; export of "
          f"{lake['export_records']:,} records {lake['export_s']} s")
    OUT.mkdir(exist_ok=True)
    (OUT / ("results-quick.json" if quick else "results.json")).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
