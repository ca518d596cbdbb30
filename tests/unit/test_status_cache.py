"""The status cache shares reads between pollers but never outlives a write."""
from chalicelib.runs.status_cache import StatusCache


def test_pollers_within_the_interval_share_one_read():
    cache, reads = StatusCache(ttl_s=60), []
    for _ in range(3):
        cache.get(lambda: reads.append(1) or len(reads))
    assert len(reads) == 1


def test_a_read_under_way_when_a_write_lands_is_not_kept():
    cache = StatusCache(ttl_s=60)

    def read_that_a_stop_overtakes():
        cache.invalidate()  # the write lands while this read is in flight
        return "running"

    assert cache.get(read_that_a_stop_overtakes) == "running"
    assert cache.get(lambda: "stopped") == "stopped"
