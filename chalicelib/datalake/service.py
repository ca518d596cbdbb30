"""The datalake's services: append a stream batch, the statistics, and the export of one date.

Exactly once, without a lock: a batch of the results stream is named by what
it is (its stream and its first and last sequence numbers), so a batch handed
over again writes the same bytes under the same key, and the catalog counts
each key once. The export drops what a replay with other boundaries could
still have duplicated (see `export_page`).
"""
from __future__ import annotations

import base64
import binascii
import json
import random
import re
from datetime import date as Date
from typing import Sequence

from chalicelib.core.errors import InvalidInput
from chalicelib.datalake.models import (
    DatalakeRecord, DatalakeStats, DateStats, ExportPage, ObjectFigures, ObjectLink, ObjectLinks, StreamBatch,
)
from chalicelib.datalake.store import Catalog, ObjectStore

RESULTS_PREFIX = "results/"
SEQUENCE_WIDTH = 40  # DynamoDB Streams sequence numbers have 21 to 40 digits; padded, keys sort in stream order
SAMPLE_SIZE = 32  # records of each object whose lag, wait and duration the catalog keeps for the summary
RECENT_MINUTES = 61  # the per-minute counters an object updates: the summary reads the last hour
OVERLAP_PAGE_FACTOR = 4  # a page grows past its size while objects overlap, up to this many times
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NAME = re.compile(r"^(\d+)_(\d+)_([^/]*)\.ndjson$")


def partition_prefix(date: str) -> str:
    """Hive-style, as Athena and Glue read it: results/date=2026-11-27/."""
    return f"{RESULTS_PREFIX}date={date}/"


def object_key(date: str, first_sequence: str, last_sequence: str, stream_label: str) -> str:
    """The one key of a batch's records of one date: the same batch always gets the same key.

    Lambda's stream event names no shard, but sequence numbers are unique within a stream, so the stream's
    label (the time it was enabled) and the batch's first and last sequence numbers name the batch. The
    numbers are zero-padded, so a partition lists in stream order.
    """
    label = re.sub(r"[^0-9A-Za-z]", "", stream_label) or "stream"
    return (f"{partition_prefix(date)}{first_sequence.zfill(SEQUENCE_WIDTH)}_"
            f"{last_sequence.zfill(SEQUENCE_WIDTH)}_{label}.ndjson")


def sequence_range(key: str) -> tuple[int, int]:
    """The first and last sequence numbers named by an object's key."""
    found = _NAME.match(key.rsplit("/", 1)[-1])
    if not found:
        raise ValueError(f"not a datalake object key: {key}")
    return int(found.group(1)), int(found.group(2))


def parse_date(text: str) -> str:
    """A partition's date, YYYY-MM-DD and a real day; anything else is the caller's mistake (400)."""
    try:
        if _DATE.match(text):
            return Date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    raise InvalidInput(f"date: must be a day as YYYY-MM-DD, got {text!r}", [{"field": "date", "message": text}])


def append_batch(objects: ObjectStore, catalog: Catalog, batch: StreamBatch, now: float,
                 rng: random.Random | None = None) -> list[str]:
    """Write the batch's results as one object per date, then count each object once. Returns the keys.

    Objects first: a failure between the two raises, the batch is handed over again, the same objects are
    written again (the same bytes) and only then counted.
    """
    by_date: dict[str, list[DatalakeRecord]] = {}
    for record in batch.records:
        by_date.setdefault(record.date, []).append(record)
    written: list[tuple[str, str, list[DatalakeRecord], int]] = []
    for date, records in sorted(by_date.items()):
        key = object_key(date, batch.first_sequence, batch.last_sequence, batch.stream_label)
        body = b"".join(record.line() for record in records)
        objects.put(key, body, {"records": str(len(records)), "written-at": f"{now:.3f}"})
        written.append((date, key, records, len(body)))
    for date, key, records, size in written:
        catalog.count_once(figures_of(date, key, records, size, now, rng or random.Random(key)), now)
    return [key for _, key, _, _ in written]


def figures_of(date: str, key: str, records: Sequence[DatalakeRecord], size: int, now: float,
               rng: random.Random) -> ObjectFigures:
    by_origin: dict[str, dict[str, int]] = {}
    per_minute: dict[int, dict[str, int]] = {}
    oldest_minute = int(now // 60) - RECENT_MINUTES
    for record in records:
        counts = by_origin.setdefault(record.origin, {"done": 0, "failed": 0, "retries": 0})
        counts[record.status] += 1
        counts["retries"] += record.attempts - 1  # the attempts before the recorded one, as emf counts them
        minute = int(record.finished_epoch // 60)
        if minute >= oldest_minute:  # older results do not move the last hour's figures
            per_minute.setdefault(minute, {"done": 0, "failed": 0})[record.status] += 1
    sample = list(records) if len(records) <= SAMPLE_SIZE else rng.sample(list(records), SAMPLE_SIZE)
    done = sum(1 for record in records if record.status == "done")
    return ObjectFigures(
        date=date, key=key, records=len(records), bytes=size, done=done, failed=len(records) - done,
        by_origin=by_origin, per_minute=per_minute, written_at=now,
        lags_s=[round(max(0.0, now - r.finished_epoch), 3) for r in sample],
        waits_s=[r.wait_s for r in sample if r.wait_s is not None],
        durations_s=[r.duration_s for r in sample if r.duration_s is not None],
    )


def _with_rate(stats: DateStats) -> DateStats:
    settled = stats.done + stats.failed
    return stats.model_copy(update={"success_rate": round(stats.done / settled, 4) if settled else None})


def stats(catalog: Catalog) -> DatalakeStats:
    """Per date, newest first, and totals: one read of the catalog's date counters, never of the objects."""
    dates = sorted(catalog.dates(), key=lambda d: d.date, reverse=True)
    totals = DateStats(date="all")
    for day in dates:
        totals = totals.model_copy(update={name: getattr(totals, name) + getattr(day, name)
                                           for name in ("objects", "records", "bytes", "done", "failed")})
    return DatalakeStats(dates=[_with_rate(day) for day in dates], totals=_with_rate(totals))


def encode_cursor(after_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after_key}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, date: str) -> str:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = decoded["after"]
        if isinstance(after, str) and after.startswith(partition_prefix(date)):
            return after
    except (binascii.Error, ValueError, KeyError, TypeError):
        pass
    raise InvalidInput("cursor: not a cursor this export gave for this date", [{"field": "cursor", "message": cursor}])


def export_page(objects: ObjectStore, date: str, cursor: str | None, page_records: int) -> ExportPage:
    """One page of a date's records as NDJSON, whole objects in key order, each id once: its latest outcome
    (an admin's retry of a failed job settles it again, and both outcomes are in the datalake).

    A page ends at the first object boundary past `page_records`, unless the next object's sequence range
    overlaps what the page holds: a batch replayed with other boundaries (say, bisected on AWS) wrote such
    an object, and its duplicates are dropped only within a page, so the page goes on (up to
    OVERLAP_PAGE_FACTOR times its size). Memory is one page's ids, whatever the size of the day.
    """
    date = parse_date(date)
    after = decode_cursor(cursor, date) if cursor else None
    page: dict[str, tuple[str, bytes]] = {}  # job id -> its latest record's finish and line, in first-seen order
    highest = -1  # the highest sequence number the page's objects cover
    for key, _size in objects.keys(partition_prefix(date), after):
        first, last = sequence_range(key)
        if len(page) >= page_records and (first > highest or len(page) >= OVERLAP_PAGE_FACTOR * page_records):
            return _page(page, encode_cursor(after or ""))
        for line in objects.lines(key):
            record = json.loads(line)
            finished = str(record.get("finished_at") or "")  # ISO 8601 in UTC: sorts as it reads
            kept = page.get(record["id"])
            if kept is None or finished > kept[0]:
                page[record["id"]] = (finished, line if line.endswith(b"\n") else line + b"\n")
        highest = max(highest, last)
        after = key
    return _page(page, None)


def _page(page: dict[str, tuple[str, bytes]], next_cursor: str | None) -> ExportPage:
    return ExportPage(body=b"".join(line for _, line in page.values()), records=len(page), next_cursor=next_cursor)


def object_links(objects: ObjectStore, date: str, cursor: str | None, limit: int, expires_s: int) -> ObjectLinks:
    """A date's objects with a presigned URL each, a page at a time: how a large day is fetched on AWS, where
    API Gateway caps a response at 10 MB and 29 s (README)."""
    date = parse_date(date)
    after = decode_cursor(cursor, date) if cursor else None
    listed: list[ObjectLink] = []
    for key, size in objects.keys(partition_prefix(date), after):
        if len(listed) == limit:
            return ObjectLinks(date=date, objects=listed, next=encode_cursor(listed[-1].key))
        listed.append(ObjectLink(key=key, bytes=size, url=objects.url(key, expires_s)))
    return ObjectLinks(date=date, objects=listed, next=None)
