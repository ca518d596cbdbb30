"""Pacer's Chalice app. Handlers only adapt: parse into a model, call one service, dump the result."""
from __future__ import annotations

import functools
import json
import logging
import time

from chalice import Chalice, Rate, Response
from pydantic import BaseModel, ValidationError

from chalicelib import runs
from chalicelib.errors import Conflict, DependencyUnavailable, InvalidInput, PacerError, PayloadTooLarge, StaleWrite
from chalicelib.models import ChangeRate, StartRun, Tick
from chalicelib.resources import JOBS_QUEUE, TICKS_QUEUE
from chalicelib.settings import container
from chalicelib.worker import Record

app = Chalice(app_name="pacer")
app.log.setLevel(logging.INFO)
JSON_BODIES = ["application/json", "text/plain", "application/x-www-form-urlencoded"]

_STATUS_CODES = [(PayloadTooLarge, 413), (InvalidInput, 400), (Conflict, 409), (StaleWrite, 409),
                 (DependencyUnavailable, 503)]


def _error_response(error: PacerError) -> Response:
    status = next((code for kind, code in _STATUS_CODES if isinstance(error, kind)), 500)
    body = {"error": error.code, "message": str(error)}
    if isinstance(error, InvalidInput) and error.fields:
        body["fields"] = error.fields
    return Response(body=body, status_code=status)


def api(path: str, methods: list[str], **options):
    """Route `path` and turn domain errors into JSON responses: the one place that maps them.

    (Chalice answers any other exception from a view itself, before
    middleware sees it, so the mapping wraps the view.)
    """

    def register(view):
        @functools.wraps(view)
        def translated(*args, **kwargs):
            try:
                return view(*args, **kwargs)
            except PacerError as error:
                return _error_response(error)

        return app.route(path, methods=methods, cors=True, **options)(translated)

    return register


def parse_body(model: type[BaseModel]) -> BaseModel:
    raw = app.current_request.raw_body or b""
    limit = container().settings.max_body_bytes
    if len(raw) > limit:
        raise PayloadTooLarge(f"body is {len(raw)} bytes; the limit is {limit}")
    try:
        data = json.loads(raw or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput("body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = [{"field": ".".join(map(str, e["loc"])) or "body", "message": e["msg"]} for e in exc.errors()]
        raise InvalidInput("; ".join(f"{f['field']}: {f['message']}" for f in fields), fields) from exc


def _status_body(now: float) -> dict:
    return runs.get_status(container().runs, now).model_dump()


def _after_write() -> dict:
    container().status_cache.invalidate()
    return _status_body(time.time())


@api("/api/run", ["POST"], content_types=JSON_BODIES)
def start_run():
    command = parse_body(StartRun)
    runs.start_run(command, container().pacer, time.time())
    return Response(body=_after_write(), status_code=201)


@api("/api/run", ["PUT"], content_types=JSON_BODIES)
def change_rate():
    command = parse_body(ChangeRate)
    runs.change_rate(command, container().pacer, time.time())
    return _after_write()


@api("/api/stop", ["POST"], content_types=JSON_BODIES)
def stop_run():
    runs.stop_run(container().pacer, time.time())
    return _after_write()


@api("/api/status", ["GET"])
def status():
    return container().status_cache.get(lambda: _status_body(time.time()))


@api("/api/health", ["GET"])
def health():
    checks = container().health()
    healthy = all(check["ok"] for check in checks.values())
    return Response(body={"status": "ok" if healthy else "unhealthy", "checks": checks},
                    status_code=200 if healthy else 503)


def _records(event) -> list[Record]:
    return [Record(message_id=r.to_dict()["messageId"], body=r.body) for r in event]


@app.on_sqs_message(queue=JOBS_QUEUE.name, batch_size=10)
def process_jobs(event):
    failed = container().worker.process(_records(event), time.time)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


@app.on_sqs_message(queue=TICKS_QUEUE.name, batch_size=1, maximum_concurrency=2)
def pace_tick(event):
    for record in event:
        outcome = container().pacer.handle_tick(Tick.model_validate_json(record.body), time.time())
        app.log.debug("tick %s: %s", record.body, outcome)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def pacing_watchdog(event):
    app.log.info("watchdog: %s", container().pacer.watchdog(time.time()))
