"""Pacer's Chalice app. Handlers only adapt: parse into a model, call one service, dump the result."""
from __future__ import annotations

import functools
import hmac
import json
import logging
import time
from contextlib import contextmanager

from chalice import Chalice, CORSConfig, Rate, Response
from pydantic import BaseModel, TypeAdapter, ValidationError

from chalicelib import compute, dlq, fleet, jobs, runs
from chalicelib.errors import (Conflict, DependencyUnavailable, Forbidden, InvalidInput, NotFound, PacerError,
                               PayloadTooLarge, StaleWrite, Unauthenticated)
from chalicelib.models import (ChangeRate, ComputeBatchSubmit, ComputeSubmit, JobEnvelope, Origin, SetConcurrency,
                               SetDispatch, StartRun, Tick, WakeUp)
from chalicelib.resources import JOBS_QUEUE, TICKS_QUEUE
from chalicelib.settings import container
from chalicelib.worker import Record

app = Chalice(app_name="pacer")
# The pages are served from another origin; their requests carry these headers, so preflights must allow them.
CORS = CORSConfig(allow_origin="*", allow_headers=["Idempotency-Key", "X-Caller-ID"])
app.log.setLevel(logging.INFO)
JSON_BODIES = ["application/json", "text/plain", "application/x-www-form-urlencoded"]

_STATUS_CODES = [(PayloadTooLarge, 413), (InvalidInput, 400), (NotFound, 404), (Unauthenticated, 401),
                 (Forbidden, 403), (Conflict, 409), (StaleWrite, 409), (DependencyUnavailable, 503)]


def _error_response(error: PacerError) -> Response:
    status = next((code for kind, code in _STATUS_CODES if isinstance(error, kind)), 500)
    body = {"error": error.code, "message": str(error)}
    if isinstance(error, InvalidInput) and error.fields:
        body["fields"] = error.fields
    headers = {"WWW-Authenticate": 'Bearer realm="pacer-admin"'} if status == 401 else {}
    return Response(body=body, status_code=status, headers=headers)


def require_admin() -> None:
    """Admin endpoints need `Authorization: Bearer <PACER_ADMIN_TOKEN>`."""
    expected = container().settings.admin_token
    given = app.current_request.headers.get("authorization", "")
    if not given:
        raise Unauthenticated("admin endpoint: send Authorization: Bearer <admin token>")
    scheme, _, token = given.partition(" ")
    if not expected:
        raise Forbidden("admin endpoints are disabled on this stage: set PACER_ADMIN_TOKEN")
    # Compared in constant time, so the answer's timing does not leak the token.
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise Forbidden("the admin token is not valid")


def _limit(default: int, maximum: int) -> int:
    raw = (app.current_request.query_params or {}).get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise InvalidInput(f"limit: must be a whole number from 1 to {maximum}", [{"field": "limit", "message": raw}])
    return int(raw)


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

        return app.route(path, methods=methods, cors=CORS, **options)(translated)

    return register


def read_json_object() -> dict:
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
    return data


def parse_body(model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate(read_json_object())
    except ValidationError as exc:
        fields = [{"field": ".".join(map(str, e["loc"])) or "body", "message": e["msg"]} for e in exc.errors()]
        raise InvalidInput("; ".join(f"{f['field']}: {f['message']}" for f in fields), fields) from exc


def _status_body(now: float) -> dict:
    return runs.get_status(container().runs, now).model_dump()


@contextmanager
def _writing():
    """Drop the cached status after a write, and after a refused one: a 409 is news that the run moved on."""
    try:
        yield
    finally:
        container().status_cache.invalidate()


@api("/api/run", ["POST"], content_types=JSON_BODIES)
def start_run():
    command = parse_body(StartRun)
    with _writing():
        runs.start_run(command, container().pacer, time.time())
    return Response(body=_status_body(time.time()), status_code=201)


@api("/api/run", ["PUT"], content_types=JSON_BODIES)
def change_rate():
    command = parse_body(ChangeRate)
    with _writing():
        runs.change_rate(command, container().pacer, time.time())
    return _status_body(time.time())


@api("/api/stop", ["POST"], content_types=JSON_BODIES)
def stop_run():
    with _writing():
        runs.stop_run(container().pacer, time.time())
    return _status_body(time.time())


@api("/api/status", ["GET"])
def status():
    return container().status_cache.get(lambda: _status_body(time.time()))


@api("/api/health", ["GET"])
def health():
    checks = container().health()
    healthy = all(check["ok"] for check in checks.values())
    return Response(body={"status": "ok" if healthy else "unhealthy", "checks": checks},
                    status_code=200 if healthy else 503)


@api("/api/workers", ["GET"])
def list_workers():
    settings = container().settings
    return fleet.fleet_view(container().fleet, time.time(), settings.worker_down_after_s).model_dump()


@api("/api/workers", ["PUT"], content_types=JSON_BODIES)
def set_workers():
    require_admin()
    command = parse_body(SetConcurrency)
    fleet.set_concurrency(container().fleet, command.concurrency, time.time())
    return list_workers()


@api("/api/dlq", ["GET"])
def list_dead_letters():
    require_admin()
    return dlq.dead_letters(container().jobs_dlq, container().failure_log, _limit(10, 100)).model_dump()


@api("/api/dlq/redrive", ["POST"], content_types=JSON_BODIES)
def redrive_dead_letters():
    require_admin()
    return dlq.redrive(container().jobs_dlq, container().jobs_queue, _limit(100, 10_000)).model_dump()


def _submit_compute(numbers: list[str], field: str) -> list:
    settings = container().settings
    caller = app.current_request.headers.get("x-caller-id")
    accepted = compute.submit(container().compute, caller, numbers, settings.compute_max_digits, time.time(), field)
    _admit("compute")
    return accepted


def _admit(origin: Origin) -> None:
    """Run the dispatcher of fair compute or of typed jobs. Best effort: the job is stored either way, and the
    next trigger (a submit, a settled message, the watchdog) dispatches again."""
    c = container()
    try:
        (c.task_dispatcher if origin == "task" else c.dispatcher).dispatch(time.time())
    except Exception:
        app.log.exception("%s dispatch failed; the next trigger retries", origin)


@api("/api/compute", ["POST"], content_types=JSON_BODIES)
def submit_compute():
    command = parse_body(ComputeSubmit)
    return Response(body=_submit_compute([command.number], "number")[0].model_dump(), status_code=202)


@api("/api/compute/batch", ["POST"], content_types=JSON_BODIES)
def submit_compute_batch():
    command = parse_body(ComputeBatchSubmit)
    accepted = _submit_compute(command.numbers, "numbers")
    return Response(body={"jobs": [a.model_dump() for a in accepted]}, status_code=202)


@api("/api/compute/{request_id}", ["GET"])
def get_compute(request_id):
    found = compute.get(container().compute, request_id)
    if found is None:
        raise NotFound(f"no compute request {request_id}")
    return found.model_dump()


@api("/api/callers", ["GET"])
def list_callers():
    return compute.callers(container().compute).model_dump()


@api("/api/jobs", ["POST"], content_types=JSON_BODIES)
def submit_job():
    c, headers = container(), app.current_request.headers
    job, created = jobs.submit(c.tasks, c.registry, read_json_object(), headers.get("x-caller-id"),
                               headers.get("idempotency-key"), c.settings.max_attempts, time.time())
    if created and job.place == "scheduled":
        _wake_up_when_due(job.scheduled_for)
    elif created:
        _admit("task")
    return Response(body=jobs.view(job), status_code=201 if created else 200)


@api("/api/jobs", ["GET"])
def list_jobs():
    params = app.current_request.query_params or {}
    return jobs.list_jobs(container().tasks, container().registry, {name: params[name] for name in params})


@api("/api/jobs/dispatch", ["GET"])
def task_dispatch_state():
    return jobs.dispatch_state(container().tasks)


@api("/api/jobs/dispatch", ["PUT"], content_types=JSON_BODIES)
def pause_task_dispatch():
    require_admin()
    command = parse_body(SetDispatch)
    container().tasks.set_paused(command.paused, time.time())
    if not command.paused:
        _admit("task")
    return jobs.dispatch_state(container().tasks)


@api("/api/jobs/{job_id}", ["GET"])
def get_job(job_id):
    return jobs.view(jobs.get(container().tasks, job_id))


@api("/api/jobs/{job_id}", ["DELETE"])
def cancel_job(job_id):
    job = jobs.cancel(container().tasks, job_id, time.time())
    _admit("task")  # a cancelled job that was admitted frees its slot
    return jobs.view(job)


@api("/api/jobs/{job_id}/retry", ["POST"], content_types=JSON_BODIES)
def retry_job(job_id):
    require_admin()
    job = jobs.retry(container().tasks, job_id, time.time())
    _admit("task")
    return jobs.view(job)


@api("/api/stats", ["GET"])
def job_stats():
    return jobs.stats(container().tasks, container().registry, time.time())


def _records(event) -> list[Record]:
    records = []
    for record in event:
        raw = record.to_dict()
        records.append(Record(message_id=raw["messageId"], body=record.body, receipt_handle=raw["receiptHandle"],
                              receive_count=int(raw.get("attributes", {}).get("ApproximateReceiveCount", "1"))))
    return records


def _refill_after(envelope: JobEnvelope) -> None:
    if envelope.origin != "run":  # its slots are free: admit the next fair share while this batch goes on
        _admit(envelope.origin)


@app.on_sqs_message(queue=JOBS_QUEUE.name, batch_size=10)
def process_jobs(event):
    with container().heartbeat.busy() as done:
        result = container().worker.process(_records(event), time.time, settled=_refill_after)
        done(result.jobs_done)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in result.failed_ids]}


def _wake_up_when_due(due: float) -> None:
    """Best effort: without the wake-up, the watchdog admits the job up to a minute after it is due."""
    try:
        jobs.wake_up_when_due(container().ticks_queue, due, time.time())
    except Exception:
        app.log.exception("could not schedule a wake-up for %s; the watchdog admits the job", due)


TICKS_MESSAGES = TypeAdapter(Tick | WakeUp)


@app.on_sqs_message(queue=TICKS_QUEUE.name, batch_size=1, maximum_concurrency=2)
def pace_tick(event):
    """The ticks queue: a run's scheduler ticks, and wake-ups for scheduled typed jobs."""
    for record in event:
        message = TICKS_MESSAGES.validate_json(record.body)
        if isinstance(message, WakeUp):
            if message.due > time.time():  # delivered a little early: wait the rest
                _wake_up_when_due(message.due)
            else:
                _admit("task")
            continue
        outcome = container().pacer.handle_tick(message, time.time())
        app.log.debug("tick %s: %s", record.body, outcome)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def pacing_watchdog(event):
    app.log.info("watchdog: %s", container().pacer.watchdog(time.time()))
    _admit("compute")
    _admit("task")  # also promotes scheduled jobs that are due
    try:
        jobs.wake_ups_due_soon(container().tasks, container().ticks_queue, time.time())
    except Exception:
        app.log.exception("could not send wake-ups for scheduled jobs; the next watchdog admits them")
