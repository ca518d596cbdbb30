"""Counting every AWS call a process makes, for the benchmarks' AWS calls per job.

Off unless `PACER_AWS_CALL_LOG` names a folder. Then each process that
builds a container counts its boto3 calls by service and operation (a
botocore `before-call` hook on the container's session, so the local
runtime's own receives and deletes are not counted) and rewrites
`<folder>/<pid>.json` twice a second, so a worker killed at any moment has
left its count behind.

With `PACER_AWS_CALL_SITES=1` each count is also keyed by where in Pacer the
call was made (`op@module.function < caller < …`, the innermost frames
outside chalicelib/aws), for finding which code a figure comes from
(`python -m bench.calls --sites`).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

FLUSH_INTERVAL_S = 0.5
SITE_DEPTH = 3  # frames named in a call site


class CallMeter:
    def __init__(self, folder: str):
        self._path = Path(folder) / f"{os.getpid()}.json"
        self._calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._sites = os.environ.get("PACER_AWS_CALL_SITES") == "1"
        self._path.parent.mkdir(parents=True, exist_ok=True)
        threading.Thread(target=self._flush_forever, name="aws-call-meter", daemon=True).start()

    def attach(self, session: Any) -> None:
        """Count each API call made through clients of this boto3 session (retries inside a call count once)."""
        session.events.register("before-call.*.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        name = f"{model.service_model.service_name}.{model.name}"
        site = _call_site() if self._sites else None
        with self._lock:
            self._calls[name] += 1
            if site:
                self._calls[f"{name}@{site}"] += 1

    def flush(self) -> None:
        # One flush at a time (the background thread's and a caller's): both write the same temporary file, and
        # the second's rename found it gone. Counting goes on meanwhile, under its own lock.
        with self._flushing:
            with self._lock:
                snapshot = dict(self._calls)
            temporary = self._path.with_suffix(".tmp")
            temporary.write_text(json.dumps(snapshot))
            temporary.replace(self._path)  # atomic: a reader never sees half a file

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_INTERVAL_S)
            self.flush()


def _call_site() -> str | None:
    """The innermost Pacer frames outside chalicelib/aws that led to this call (module.function < its caller < …)."""
    frame: FrameType | None = sys._getframe(2)
    chain: list[str] = []
    while frame is not None and len(chain) < SITE_DEPTH:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("chalicelib.") and not module.startswith("chalicelib.aws."):
            chain.append(f"{module.removeprefix('chalicelib.')}.{frame.f_code.co_name}")
        frame = frame.f_back
    return " < ".join(chain) or None


def read_calls(folder: str | Path) -> Counter[str]:
    """Every process's calls so far, added up."""
    total: Counter[str] = Counter()
    for path in Path(folder).glob("*.json"):
        try:
            total.update(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # a process's file being replaced right now; the next read has it
    return total
