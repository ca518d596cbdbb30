"""The datalake's ports on their in-memory twins and on S3 and DynamoDB (moto): the same suite."""
from __future__ import annotations

import boto3
import pytest

from chalicelib.datalake.dynamo import DynamoCatalog
from chalicelib.datalake.memory import MemoryCatalog, MemoryObjectStore
from chalicelib.datalake.models import ObjectFigures
from chalicelib.datalake.s3 import S3ObjectStore
from chalicelib.resources import DATALAKE_BUCKET, STATE_TABLE

NOW = 1_795_740_000.0  # 2026-11-27T00:40:00Z
MINUTE = int(NOW // 60)


@pytest.fixture(params=["memory", "moto"])
def lake(request):
    if request.param == "memory":
        return MemoryObjectStore(), MemoryCatalog()
    request.getfixturevalue("moto_aws")
    return (S3ObjectStore(boto3.client("s3"), DATALAKE_BUCKET.name),
            DynamoCatalog(boto3.client("dynamodb"), STATE_TABLE.name))


def figures(key: str, date="2026-11-27", records=3, failed=1, written_at=NOW, **changes) -> ObjectFigures:
    fields = dict(date=date, key=key, records=records, bytes=100 * records, done=records - failed, failed=failed,
                  by_origin={"run": {"done": records - failed, "failed": failed, "retries": failed}},
                  per_minute={MINUTE - 1: {"done": records - failed, "failed": failed}}, written_at=written_at,
                  lags_s=[0.5] * records, waits_s=[0.1] * records, durations_s=[0.2] * records)
    fields.update(changes)
    return ObjectFigures(**fields)


def test_objects_list_in_key_order_after_a_start_key_and_stream_their_lines(lake):
    objects, _ = lake
    for name in ("b", "a", "c"):
        objects.put(f"results/date=2026-11-27/{name}.ndjson", f'{{"id": "{name}1"}}\n{{"id": "{name}2"}}\n'.encode(),
                    {"records": "2"})
    objects.put("results/date=2026-11-28/z.ndjson", b'{"id": "z"}\n', {})
    keys = [k for k, _ in objects.keys("results/date=2026-11-27/")]
    assert keys == [f"results/date=2026-11-27/{n}.ndjson" for n in "abc"]
    assert [k for k, _ in objects.keys("results/date=2026-11-27/", keys[0])] == keys[1:]
    assert dict(objects.keys("results/date=2026-11-28/")) == {"results/date=2026-11-28/z.ndjson": 12}
    assert list(objects.lines(keys[1])) == [b'{"id": "b1"}\n', b'{"id": "b2"}\n']
    assert list(objects.keys("results/date=2026-01-01/")) == []


def test_a_second_put_of_a_key_replaces_the_object(lake):
    objects, _ = lake
    objects.put("results/date=2026-11-27/k.ndjson", b"old\n", {})
    objects.put("results/date=2026-11-27/k.ndjson", b"new\n", {})
    assert list(objects.keys("results/")) == [("results/date=2026-11-27/k.ndjson", 4)]
    assert list(objects.lines("results/date=2026-11-27/k.ndjson")) == [b"new\n"]


def test_the_catalog_counts_each_object_key_once(lake):
    _, catalog = lake
    assert catalog.count_once(figures("k1"), NOW) is True
    assert catalog.count_once(figures("k1"), NOW + 5) is False  # the same batch handed over again
    assert catalog.count_once(figures("k2", records=2, failed=0), NOW) is True
    [day] = catalog.dates()
    assert (day.date, day.objects, day.records, day.bytes, day.done, day.failed) == ("2026-11-27", 2, 5, 500, 4, 1)
    assert catalog.origins() == {"run": {"done": 4, "failed": 1, "retries": 1}}
    [minute] = catalog.minutes(MINUTE - 60)
    assert (minute.minute, minute.done, minute.failed) == (MINUTE - 1, 4, 1)
    assert catalog.minutes(MINUTE) == []


def test_the_catalog_gives_the_newest_samples_first(lake):
    _, catalog = lake
    for n in range(5):
        catalog.count_once(figures(f"k{n}", written_at=NOW + n, lags_s=[float(n)]), NOW + n)
    samples = catalog.samples(3)
    assert [s.written_at for s in samples] == [NOW + 4, NOW + 3, NOW + 2]
    assert samples[0].lags_s == [4.0] and samples[0].waits_s == [0.1] * 3
