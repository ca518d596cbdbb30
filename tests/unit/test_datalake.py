"""The datalake over its in-memory twins: stream batches to objects, key derivation, stats, the export, metrics."""
from __future__ import annotations

import json

import pytest

from app import results_to_datalake
from chalicelib.aws.codec import to_item
from chalicelib.core.errors import InvalidInput
from chalicelib.core.jobs import JobOutcome
from chalicelib.core.stats import percentile
from chalicelib.datalake import metrics
from chalicelib.datalake import service as datalake
from chalicelib.datalake.memory import MemoryCatalog, MemoryObjectStore
from chalicelib.datalake.stream import batch_of
from chalicelib.fleet.models import Fleet
from tests.fakes import MemoryContainer

STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/pacer-results/stream/2026-11-27T11:03:18.983725"
MIDNIGHT = 1_795_737_600.0  # 2026-11-27T00:00:00Z
SEQ = 1100000000017454423009


def outcome(job_id: str, finished_at: float, origin="run", group="run-1", status="done", **extra) -> JobOutcome:
    fields = dict(job_id=job_id, group=group, origin=origin, outcome=status, attempt=1, worker="w1",
                  finished_at=finished_at, started_at=finished_at - 0.25, submitted_at=finished_at - 1.25,
                  number="12", factors=["2", "2", "3"] if status == "done" else [],
                  error=None if status == "done" else "boom")
    fields.update(extra)
    return JobOutcome(**fields)


def stream_record(item: JobOutcome, sequence: int, event: str = "INSERT") -> dict:
    image = to_item({k: v for k, v in item.model_dump().items() if v is not None})
    change = {"Keys": {"job_id": {"S": item.job_id}}, "SequenceNumber": str(sequence), "SizeBytes": 100,
              "StreamViewType": "NEW_IMAGE", "ApproximateCreationDateTime": float(int(item.finished_at))}
    if event != "REMOVE":
        change["NewImage"] = image
    return {"eventID": f"e{sequence}", "eventName": event, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1", "dynamodb": change, "eventSourceARN": STREAM}


def records_for(outcomes: list[JobOutcome], start: int = SEQ) -> list[dict]:
    return [stream_record(o, start + i) for i, o in enumerate(outcomes)]


@pytest.fixture
def lake():
    return MemoryObjectStore(), MemoryCatalog()


def lines(objects: MemoryObjectStore, key: str) -> list[dict]:
    return [json.loads(line) for line in objects.objects[key].splitlines()]


def test_a_batch_of_results_becomes_one_ndjson_object_under_its_dates_partition(lake):
    objects, catalog = lake
    batch = batch_of(records_for([outcome(f"run-1:{i}", MIDNIGHT + 10 + i) for i in range(5)]))
    [key] = datalake.append_batch(objects, catalog, batch, MIDNIGHT + 20)
    assert key.startswith("results/date=2026-11-27/") and key.endswith(".ndjson")
    assert [line["id"] for line in lines(objects, key)] == [f"run-1:{i}" for i in range(5)]
    assert objects.puts == 1


def test_the_key_is_derived_from_the_stream_and_the_batchs_first_and_last_sequence_numbers():
    key = datalake.object_key("2026-11-27", "1100000000017454423009", "1100000000017454423013",
                              "2026-11-27T11:03:18.983725")
    assert key == ("results/date=2026-11-27/" + "1100000000017454423009".zfill(40) + "_"
                   + "1100000000017454423013".zfill(40) + "_20261127T110318983725.ndjson")
    assert datalake.sequence_range(key) == (1100000000017454423009, 1100000000017454423013)
    # Padded, keys list in stream order even where the numbers' lengths differ.
    shorter = datalake.object_key("2026-11-27", "99", "120", "x")
    assert sorted([key, shorter]) == [shorter, key]


def test_a_redelivered_batch_overwrites_the_same_object_and_is_counted_once(lake):
    objects, catalog = lake
    records = records_for([outcome(f"run-1:{i}", MIDNIGHT + 10) for i in range(3)])
    first = datalake.append_batch(objects, catalog, batch_of(records), MIDNIGHT + 20)
    again = datalake.append_batch(objects, catalog, batch_of(records), MIDNIGHT + 25)
    assert first == again and list(objects.objects) == first
    stats = datalake.stats(catalog)
    assert (stats.totals.objects, stats.totals.records) == (1, 3)


def test_a_batch_spanning_midnight_writes_one_object_per_date(lake):
    objects, catalog = lake
    batch = batch_of(records_for([outcome("a", MIDNIGHT - 1), outcome("b", MIDNIGHT + 1), outcome("c", MIDNIGHT - 2)]))
    keys = datalake.append_batch(objects, catalog, batch, MIDNIGHT + 5)
    assert [k.split("/")[1] for k in keys] == ["date=2026-11-26", "date=2026-11-27"]
    assert [line["id"] for line in lines(objects, keys[0])] == ["a", "c"]
    assert [line["id"] for line in lines(objects, keys[1])] == ["b"]
    # Both objects are named by the whole batch, so a redelivery rewrites both.
    assert {datalake.sequence_range(k) for k in keys} == {(SEQ, SEQ + 2)}


def test_only_inserts_of_result_items_count_and_the_range_is_the_whole_batchs():
    job = outcome("a", MIDNIGHT)
    records = [stream_record(job, SEQ, "INSERT"), stream_record(job, SEQ + 1, "MODIFY"),
               stream_record(job, SEQ + 2, "REMOVE")]
    batch = batch_of(records)
    assert [r.id for r in batch.records] == ["a"]
    assert (batch.first_sequence, batch.last_sequence) == (str(SEQ), str(SEQ + 2))
    assert batch_of(records[1:]) is None and batch_of([]) is None


def test_each_line_holds_the_fields_seed_004_asks_for_whichever_way_the_job_came_in():
    paced = outcome("run-1:7", MIDNIGHT + 60)
    computed = outcome("c-1", MIDNIGHT + 60, origin="compute", group="alice", status="failed", attempt=3)
    typed = outcome("j-1", MIDNIGHT + 60, origin="typed", group="bob", type="email", number=None, factors=[],
                    result={"receipt": "r-1"})
    run, compute, typed_line = (json.loads(r.line()) for r in batch_of(records_for([paced, computed, typed])).records)
    assert run["run"] == "run-1" and run["caller"] is None and run["type"] == "factor"
    assert run["status"] == "done" and run["result"] == {"number": "12", "factors": ["2", "2", "3"]}
    assert (run["duration_s"], run["wait_s"]) == (0.25, 1.0)
    assert run["submitted_at"] == "2026-11-27T00:00:58.750Z" and run["finished_at"] == "2026-11-27T00:01:00.000Z"
    assert compute["caller"] == "alice" and compute["run"] is None
    assert (compute["status"], compute["error"], compute["result"], compute["attempts"]) == ("failed", "boom", None, 3)
    assert typed_line["type"] == "email" and typed_line["result"] == {"receipt": "r-1"}
    assert set(run) == {"id", "origin", "group", "run", "caller", "type", "status", "result", "error", "attempts",
                        "worker", "submitted_at", "started_at", "finished_at", "duration_s", "wait_s", "sequence"}


def test_stats_count_objects_records_bytes_and_the_success_rate_per_date_and_in_total(lake):
    objects, catalog = lake
    day1 = [outcome(f"a{i}", MIDNIGHT - 100, status="failed" if i == 0 else "done") for i in range(4)]
    day2 = [outcome(f"b{i}", MIDNIGHT + 100) for i in range(2)]
    datalake.append_batch(objects, catalog, batch_of(records_for(day1)), MIDNIGHT + 200)
    datalake.append_batch(objects, catalog, batch_of(records_for(day2, SEQ + 10)), MIDNIGHT + 200)
    stats = datalake.stats(catalog)
    assert [d.date for d in stats.dates] == ["2026-11-27", "2026-11-26"]
    newest, oldest = stats.dates
    assert (oldest.objects, oldest.records, oldest.done, oldest.failed, oldest.success_rate) == (1, 4, 3, 1, 0.75)
    assert newest.success_rate == 1.0
    assert oldest.bytes == sum(len(b) for k, b in objects.objects.items() if "2026-11-26" in k)
    assert (stats.totals.records, stats.totals.done, stats.totals.failed) == (6, 5, 1)
    assert stats.totals.success_rate == round(5 / 6, 4)


def test_the_export_drops_the_duplicates_a_replay_with_other_boundaries_wrote(lake):
    objects, catalog = lake
    jobs = [outcome(f"j{i}", MIDNIGHT + 5) for i in range(6)]
    records = records_for(jobs)
    datalake.append_batch(objects, catalog, batch_of(records[:4]), MIDNIGHT + 10)
    # The same records handed over again, bisected (AWS's BisectBatchOnFunctionError): other keys.
    datalake.append_batch(objects, catalog, batch_of(records[:2]), MIDNIGHT + 11)
    datalake.append_batch(objects, catalog, batch_of(records[2:6]), MIDNIGHT + 12)
    assert len(objects.objects) == 3
    page = datalake.export_page(objects, "2026-11-27", None, page_records=1000)
    ids = [json.loads(line)["id"] for line in page.body.splitlines()]
    assert sorted(ids) == [f"j{i}" for i in range(6)] and page.records == 6 and page.next_cursor is None


def test_the_export_keeps_a_retried_jobs_latest_outcome(lake):
    objects, catalog = lake
    failed = outcome("j1", MIDNIGHT + 5, status="failed", error="boom")
    retried = outcome("j1", MIDNIGHT + 50, status="done")  # an admin's retry settled it again, later that day
    datalake.append_batch(objects, catalog, batch_of(records_for([failed, outcome("j2", MIDNIGHT + 6)])), MIDNIGHT + 9)
    datalake.append_batch(objects, catalog, batch_of(records_for([retried], SEQ + 100)), MIDNIGHT + 51)
    page = datalake.export_page(objects, "2026-11-27", None, page_records=1000)
    exported = [json.loads(line) for line in page.body.splitlines()]
    assert [(r["id"], r["status"]) for r in exported] == [("j1", "done"), ("j2", "done")] and page.records == 2


def test_the_export_pages_with_a_cursor_and_every_record_comes_once(lake):
    objects, catalog = lake
    for batch in range(10):
        jobs = [outcome(f"j{batch}-{i}", MIDNIGHT + 5) for i in range(7)]
        datalake.append_batch(objects, catalog, batch_of(records_for(jobs, SEQ + 100 * batch)), MIDNIGHT + 9)
    seen, cursor, pages = [], None, 0
    while True:
        page = datalake.export_page(objects, "2026-11-27", cursor, page_records=20)
        pages += 1
        seen += [json.loads(line)["id"] for line in page.body.splitlines()]
        assert page.records <= 20 + 7  # whole objects: a page ends at the first boundary past its size
        if not (cursor := page.next_cursor):
            break
    assert pages == 4 and len(seen) == 70 and len(set(seen)) == 70


def test_an_export_of_a_day_without_data_is_empty_and_a_malformed_date_or_cursor_is_refused(lake):
    objects, _ = lake
    assert datalake.export_page(objects, "2026-01-01", None, 10).body == b""
    for bad in ("2026-13-01", "2026-02-30", "yesterday", "2026-1-1", "../etc"):
        with pytest.raises(InvalidInput):
            datalake.export_page(objects, bad, None, 10)
    with pytest.raises(InvalidInput):
        datalake.export_page(objects, "2026-01-01", "not-a-cursor", 10)


def test_the_stream_handler_writes_the_batch_through_the_containers_datalake(client, c):
    event = {"Records": records_for([outcome("run-1:1", MIDNIGHT + 3), outcome("run-1:2", MIDNIGHT + 4)])}
    results_to_datalake(event, None)
    results_to_datalake(event, None)  # handed over again
    assert len(c.datalake_objects.objects) == 1
    assert datalake.stats(c.datalake_catalog).totals.records == 2


@pytest.fixture
def c():
    return MemoryContainer()


def test_the_api_answers_stats_export_pages_and_400_for_a_bad_date(client, c):
    for batch in range(3):
        jobs = [outcome(f"j{batch}-{i}", MIDNIGHT + 5) for i in range(3)]
        datalake.append_batch(c.datalake_objects, c.datalake_catalog, batch_of(records_for(jobs, SEQ + 10 * batch)),
                              MIDNIGHT + 9)
    stats = client.http.get("/api/datalake/stats").json_body
    assert stats["dates"][0]["date"] == "2026-11-27" and stats["totals"]["records"] == 9
    c.settings.datalake_page_records = 4
    first = client.http.get("/api/datalake/export/2026-11-27")
    headers = {name.lower(): value for name, value in first.headers.items()}
    assert first.status_code == 200 and headers["content-type"] == "application/x-ndjson"
    assert len(first.body.splitlines()) == 6 and headers["x-next-cursor"]
    rest = client.http.get(f"/api/datalake/export/2026-11-27?cursor={headers['x-next-cursor']}")
    assert len(rest.body.splitlines()) == 3 and "x-next-cursor" not in {n.lower() for n in rest.headers}
    empty = client.http.get("/api/datalake/export/2026-01-01")
    assert (empty.status_code, empty.body) == (200, b"")
    bad = client.http.get("/api/datalake/export/2026-13-45")
    assert bad.status_code == 400 and bad.json_body["fields"][0]["field"] == "date"
    links = client.http.get("/api/datalake/objects/2026-11-27?limit=2").json_body
    assert len(links["objects"]) == 2 and links["next"] and links["objects"][0]["url"].startswith("memory://")


def test_the_metrics_summary_reads_counters_and_samples_not_the_results(lake):
    objects, catalog = lake
    now = MIDNIGHT + 3600
    done = [outcome(f"d{i}", now - 30, started_at=now - 30 - 0.1 * i, submitted_at=now - 31 - 0.1 * i)
            for i in range(1, 10)]
    failed = [outcome("f1", now - 30, status="failed", origin="compute", group="alice", attempt=3)]
    datalake.append_batch(objects, catalog, batch_of(records_for(done + failed)), now - 29)
    fleet = Fleet(concurrency=2, down_after_s=120, workers=[])
    summary = metrics.summary(catalog, fleet, {"visible": 3, "in_flight": 2, "delayed": 1}, {"visible": 4}, now,
                              {"run": 0, "compute": 4, "typed": 0})
    assert summary["jobs"]["by_status"] == {"done": 9, "failed": 1}
    # Two retries before its recorded attempt; admitted is what finished and what is still in flight.
    assert summary["jobs"]["by_origin"]["compute"] == {"done": 0, "failed": 1, "retries": 2, "in_flight": 4,
                                                       "admitted": 5}
    assert summary["jobs"]["by_origin"]["typed"] == {"done": 0, "failed": 0, "retries": 0, "in_flight": 0,
                                                     "admitted": 0}
    assert summary["jobs"]["queued_messages"] == 4 and summary["dlq_depth"] == 4
    assert summary["throughput"]["last_minute"] == 10 and summary["throughput"]["last_hour"] == 10
    assert summary["failure_rate"]["last_hour"] == 0.1
    assert summary["processing_s"]["p50"] == 0.4 and summary["processing_s"]["p99"] == 0.9
    assert summary["datalake_lag_s"]["p50"] == 1.0
    assert summary["sampled"] == {"objects": 1, "records": 10, "minutes": 1}


def test_percentiles_use_the_nearest_rank():
    values = list(range(1, 101))
    assert [percentile(values, q / 100, 3) for q in (50, 95, 99)] == [50, 95, 99]
    assert percentile([], 0.5) is None


def test_the_summary_counts_each_way_ins_jobs_in_flight_from_its_own_counters(client, c):
    client.http.post("/api/compute/batch", body=json.dumps({"numbers": ["12", "15", "21"]}),
                     headers={"Content-Type": "application/json", "X-Caller-ID": "alice"})
    client.http.post("/api/run", body=json.dumps({"x": 60, "y": 1, "total": 5}),
                     headers={"Content-Type": "application/json"})
    [tick] = c.ticks_queue.drain()
    client.lambda_.invoke("pace_tick", client.events.generate_sqs_event(message_bodies=[tick.body],
                                                                      queue_name="pacer-ticks"))
    by_origin = client.http.get("/api/metrics/summary").json_body["jobs"]["by_origin"]
    run_admitted = c.runs.current().enqueued
    assert run_admitted >= 1
    assert {origin: (counts["in_flight"], counts["admitted"]) for origin, counts in by_origin.items()} == {
        "run": (run_admitted, run_admitted), "compute": (3, 3), "typed": (0, 0)}
