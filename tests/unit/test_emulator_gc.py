"""The emulator freezes what survives a full garbage collection, and only then (infra/emulator.py)."""
import subprocess
import sys

PROBE = """
import gc
from infra.emulator import freeze_after_full_collections
kept = [[n] for n in range(10_000)]  # what the emulator stores: objects a collection walks
freeze_after_full_collections()
before = gc.get_freeze_count()
gc.collect(1)
after_young = gc.get_freeze_count()
gc.collect()
print(before, after_young, gc.get_freeze_count())
"""


def test_only_a_full_collection_freezes_its_survivors():
    # In a process of its own: frozen objects stay frozen for the process's life.
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
    before, after_young, after_full = map(int, out)
    assert before == 0 and after_young == 0
    assert after_full >= 10_000  # the stored lists (and the rest of the heap) are no longer walked
