"""The results stream as the datalake reads it: Lambda's DynamoDB stream records to a `StreamBatch`.

Only INSERTs count: the ledger puts a result item once (`attribute_not_exists(job_id)`), so each settled
job is one INSERT. A MODIFY or a REMOVE (an admin retry deletes a failed result) is not a new outcome.
"""
from __future__ import annotations

from typing import Any, Sequence

from chalicelib.aws.codec import from_item
from chalicelib.core.jobs import Origin
from chalicelib.core.times import iso
from chalicelib.datalake.models import DatalakeRecord, StreamBatch


def stream_label(event_source_arn: str) -> str:
    """`arn:…:table/pacer-results/stream/2026-11-27T11:03:18.983` -> `2026-11-27T11:03:18.983`."""
    return event_source_arn.rsplit("/stream/", 1)[-1] if "/stream/" in event_source_arn else ""


def record_of(item: dict[str, Any], sequence: str) -> DatalakeRecord:
    """One result item (JobOutcome as the ledger stored it) as a datalake line."""
    origin: Origin = "typed" if item.get("origin") == "task" else item.get("origin", "run")
    group = str(item.get("group") or item.get("run_id") or "")
    finished = float(item["finished_at"])
    submitted = float(item["submitted_at"]) if item.get("submitted_at") is not None else None
    started = float(item["started_at"]) if item.get("started_at") is not None else None
    if origin == "typed":
        result = item.get("result")
    else:
        result = {"number": item.get("number"), "factors": item.get("factors", [])} if item["outcome"] == "done" else None
    return DatalakeRecord(
        id=str(item["job_id"]), origin=origin, group=group,
        run=group if origin == "run" else None, caller=group if origin != "run" else None,
        type=str(item.get("type") or ("factor" if origin != "typed" else "unknown")),
        status=item["outcome"], result=result, error=item.get("error"), attempts=int(item.get("attempt", 1)),
        worker=str(item.get("worker", "")),
        submitted_at=iso(submitted), started_at=iso(started), finished_at=iso(finished),
        duration_s=round(finished - started, 6) if started is not None else None,
        wait_s=round(started - submitted, 6) if started is not None and submitted is not None else None,
        sequence=sequence, finished_epoch=finished,
    )


def batch_of(records: Sequence[dict[str, Any]]) -> StreamBatch | None:
    """The batch's new result items, or None if it holds none. Its range is the whole batch's, INSERT or not,
    so the key of a batch handed over again is the same."""
    if not records:
        return None
    sequences = [str(record["dynamodb"]["SequenceNumber"]) for record in records]
    inserted = [record_of(from_item(record["dynamodb"]["NewImage"]), sequence)
                for record, sequence in zip(records, sequences)
                if record.get("eventName") == "INSERT" and "NewImage" in record["dynamodb"]]
    if not inserted:
        return None
    return StreamBatch(stream_label=stream_label(str(records[0].get("eventSourceARN", ""))),
                       first_sequence=sequences[0], last_sequence=sequences[-1], records=inserted)
