"""The read cache shares reads between pollers but never outlives a write."""
import threading

from chalicelib.core.read_cache import ReadCache


def test_pollers_of_one_key_within_the_interval_share_one_read():
    cache, reads = ReadCache(ttl_s=60), []
    for _ in range(3):
        cache.get("status", lambda: reads.append(1) or len(reads))
    assert len(reads) == 1


def test_each_key_is_read_and_kept_on_its_own():
    cache = ReadCache(ttl_s=60)
    assert [cache.get(key, lambda k=key: f"page of {k}") for key in ("a", "b", "a")] == \
        ["page of a", "page of b", "page of a"]


def test_a_read_under_way_when_a_write_lands_is_not_kept():
    cache = ReadCache(ttl_s=60)

    def read_that_a_stop_overtakes():
        cache.invalidate()  # the write lands while this read is in flight
        return "running"

    assert cache.get("status", read_that_a_stop_overtakes) == "running"
    assert cache.get("status", lambda: "stopped") == "stopped"


def test_a_write_drops_every_key():
    cache = ReadCache(ttl_s=60)
    cache.get("a", lambda: "old a")
    cache.get("b", lambda: "old b")
    cache.invalidate()
    assert (cache.get("a", lambda: "new a"), cache.get("b", lambda: "new b")) == ("new a", "new b")


def test_past_its_bound_the_oldest_answer_is_dropped_first():
    cache = ReadCache(ttl_s=60, max_keys=2)
    for key in ("a", "b", "c"):
        cache.get(key, lambda k=key: f"old {k}")
    assert [cache.get(key, lambda k=key: f"new {k}") for key in ("c", "b", "a")] == ["old c", "old b", "new a"]


def test_a_slow_read_of_one_key_does_not_hold_up_another_key():
    cache, started, release = ReadCache(ttl_s=60), threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(10)
        return "slow"
    reader = threading.Thread(target=lambda: cache.get("slow", slow))
    reader.start()
    try:
        assert started.wait(10)
        assert cache.get("quick", lambda: "quick") == "quick"  # would wait on one shared loader lock
    finally:
        release.set()
        reader.join()
