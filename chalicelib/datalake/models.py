"""The datalake's models: one line per result, a batch's object, and the views the API answers with."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from chalicelib.core.jobs import Origin


class DatalakeRecord(BaseModel):
    """One NDJSON line: a job's one outcome, whichever way the job came in."""

    id: str
    origin: Origin
    group: str  # the run, or the caller (see the glossary)
    run: str | None = None  # a paced job's run
    caller: str | None = None  # a compute request's or a typed job's caller
    type: str  # a typed job's type; "factor" for the numbers of runs and compute
    status: Literal["done", "failed"]
    result: dict[str, Any] | None = None  # a number and its factors, or a typed job's result
    error: str | None = None
    attempts: int
    worker: str
    submitted_at: str | None = None  # ISO 8601 UTC; a paced job's due time
    started_at: str | None = None
    finished_at: str
    duration_s: float | None = None  # started to finished: processing time
    wait_s: float | None = None  # submitted to started: queue wait
    sequence: str  # the results stream's sequence number of the result item's INSERT (the export's de-dup)
    # Epoch seconds, for the catalog's figures; not written to the line (see `line`).
    finished_epoch: float = Field(exclude=True)
    wait_epoch_s: float | None = Field(default=None, exclude=True)

    @property
    def date(self) -> str:
        return self.finished_at[:10]

    def line(self) -> bytes:
        return self.model_dump_json().encode() + b"\n"


class StreamBatch(BaseModel):
    """What one invocation of the stream handler holds: one shard's new result items, in order, and the
    range of the whole batch (INSERT or not), which names it."""

    stream_label: str  # the stream's label (when it was enabled): Lambda's event names no shard
    first_sequence: str
    last_sequence: str
    records: list[DatalakeRecord]


class ObjectFigures(BaseModel):
    """What the catalog keeps for an object it counts once: the partition's counters and a sample."""

    date: str
    key: str
    records: int
    bytes: int
    done: int
    failed: int
    by_origin: dict[str, dict[str, int]]  # origin -> {"done": n, "failed": n, "retries": n}
    per_minute: dict[int, dict[str, int]]  # minute (epoch // 60) of finished_at -> {"done": n, "failed": n}
    written_at: float
    lags_s: list[float]  # written_at - finished_at, a sample of the object's records
    waits_s: list[float]  # queue waits, a sample
    durations_s: list[float]  # processing times, a sample


class DateStats(BaseModel):
    date: str
    objects: int = 0
    records: int = 0
    bytes: int = 0
    done: int = 0
    failed: int = 0
    success_rate: float | None = None


class DatalakeStats(BaseModel):
    dates: list[DateStats]
    totals: DateStats


class MinuteCount(BaseModel):
    minute: int  # epoch seconds // 60
    done: int = 0
    failed: int = 0


class Sample(BaseModel):
    """One object's sample, as the metrics summary reads it: newest first."""

    written_at: float
    lags_s: list[float]
    waits_s: list[float]
    durations_s: list[float]


class ExportPage(BaseModel):
    body: bytes
    records: int
    next_cursor: str | None


# Query strings are strings: these models are lax, so "5" is the limit 5.

class ExportQuery(BaseModel):
    cursor: str | None = Field(default=None, description="X-Next-Cursor of the previous page")


class ObjectsQuery(BaseModel):
    limit: int = Field(default=100, ge=1, le=1000, description="objects a page")
    cursor: str | None = Field(default=None, description="`next` of the previous page")


class ObjectLink(BaseModel):
    key: str
    bytes: int
    url: str = Field(description="a presigned GET URL of the object")


class ObjectLinks(BaseModel):
    date: str
    objects: list[ObjectLink]
    next: str | None = Field(description="the cursor of the next page, or null")
