"""Pacer's Chalice app. Handlers only adapt: parse into a model, call one service, dump the result."""
from __future__ import annotations

import functools
import hmac
import json
import time
from typing import Any, Callable, TypeVar

from chalice.app import Chalice, CORSConfig, DynamoDBEvent, Rate, Request, Response, SQSEvent
from pydantic import BaseModel, TypeAdapter, ValidationError

from chalicelib.admission.models import CallerWeight, RateLimit, RateLimits, SetLimit, SetWeight
from chalicelib.apidoc.document import openapi_document
from chalicelib.apidoc.operations import NO_CONTENT, Link, Operation, Operations
from chalicelib.bots import service as bots
from chalicelib.bots.models import (
    BotList,
    BotSummary,
    BotView,
    Claim,
    Claimed,
    Complete,
    Fail,
    Leased,
    Registered,
    RegisterBot,
)
from chalicelib.compute import service as compute
from chalicelib.callers import service as callers
from chalicelib.callers.models import Callers
from chalicelib.compute.models import Accepted, AcceptedBatch, ComputeBatchSubmit, ComputeSubmit, ComputeView
from chalicelib.container import container
from chalicelib.core.errors import (
    Conflict,
    DependencyUnavailable,
    ErrorBody,
    Forbidden,
    InvalidInput,
    NotFound,
    PacerError,
    PayloadTooLarge,
    StaleWrite,
    Unauthenticated,
)
from chalicelib.core.health import Health
from chalicelib.core.validation import field_errors, invalid
from chalicelib.datalake import metrics
from chalicelib.datalake import service as datalake
from chalicelib.datalake.models import DatalakeStats, ExportQuery, ObjectLinks, ObjectsQuery
from chalicelib.datalake.stream import batch_of
from chalicelib.dlq import service as dlq
from chalicelib.dlq.models import DeadLetters, DeadLettersQuery, Redriven, RedriveQuery
from chalicelib.fleet import service as fleet
from chalicelib.fleet.models import BotCount, Fleet, SetBotCount, SetConcurrency
from chalicelib.observability import logs
from chalicelib.resources import JOBS_QUEUE, RESULTS_TABLE, TICKS_QUEUE
from chalicelib.runs import service as runs
from chalicelib.runs.models import ChangeRate, RunStatus, StartRun
from chalicelib.typed import service as typed
from chalicelib.typed.executors import REGISTRY
from chalicelib.typed.listing import ListQuery
from chalicelib.typed.models import DispatchState, JobList, JobView, Populated, PopulateJobs, SetDispatch, StatsView
from chalicelib.worker.worker import Record

Model = TypeVar("Model", bound=BaseModel)
View = Callable[..., Any]

# Not Chalice's own log format: app.log's lines are Powertools' JSON, as chalicelib's are (observability/logs.py).
app = Chalice(app_name=logs.SERVICE, configure_logs=False)
# The pages are served from another origin; their requests carry these headers, so preflights must allow them.
CORS = CORSConfig(allow_origin="*", allow_headers=["Idempotency-Key", "X-Caller-ID"])
JSON_BODIES = ["application/json", "text/plain", "application/x-www-form-urlencoded"]

_STATUS_CODES = [(PayloadTooLarge, 413), (InvalidInput, 400), (NotFound, 404), (Unauthenticated, 401),
                 (Forbidden, 403), (Conflict, 409), (StaleWrite, 409), (DependencyUnavailable, 503)]


@app.middleware("all")
def observe(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Every invocation's lines carry its request id; an HTTP request's also its correlation id, which its jobs keep
    and its answer names."""
    http = isinstance(event, Request)
    request_id = getattr(event.lambda_context if http else event.context, "aws_request_id", None)
    if not http:
        with logs.invocation(request_id):
            return get_response(event)
    correlation_id = logs.correlation_id_for(event.headers.get(logs.CORRELATION_HEADER),
                                             event.context.get("requestId") or request_id)
    with logs.invocation(request_id, correlation_id):
        response = get_response(event)
    response.headers[logs.CORRELATION_HEADER] = correlation_id
    return response


def _error_response(error: PacerError) -> Response:
    status = next((code for kind, code in _STATUS_CODES if isinstance(error, kind)), 500)
    fields = error.fields if isinstance(error, InvalidInput) and error.fields else None
    body = ErrorBody.model_validate({"error": error.code, "message": str(error), "fields": fields})
    headers: dict[str, str | list[str]] = {"WWW-Authenticate": 'Bearer realm="pacer-admin"'} if status == 401 else {}
    return Response(body=body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _request() -> Request:
    request = app.current_request
    assert request is not None, "only a route handler has a request"
    return request


def require_admin() -> None:
    """Admin endpoints need `Authorization: Bearer <PACER_ADMIN_TOKEN>`."""
    expected = container().settings.admin_token
    given = _request().headers.get("authorization", "")
    if not given:
        raise Unauthenticated("admin endpoint: send Authorization: Bearer <admin token>")
    scheme, _, token = given.partition(" ")
    if not expected:
        raise Forbidden("admin endpoints are disabled on this stage: set PACER_ADMIN_TOKEN")
    # Compared in constant time, so the answer's timing does not leak the token.
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise Forbidden("the admin token is not valid")


def _query_params() -> dict[str, str]:
    params = _request().query_params
    return {name: params[name] for name in params} if params else {}


def parse_query(model: type[Model]) -> Model:
    try:
        return model.model_validate(_query_params())
    except ValidationError as exc:
        raise invalid(field_errors(exc)) from exc


JOB_ID_PARAMETER = {"job_id": "a typed job's id, j- and 16 hex digits"}
# Links: what may follow an answer, with the values it takes from it (OpenAPI runtime expressions).
THE_JOB = {"job_id": "$response.body#/id"}
JOB_LINKS = (Link("get_job", THE_JOB, "the job and its timeline"), Link("cancel_job", THE_JOB, "cancel it"),
             Link("retry_job", THE_JOB, "retry it once it has failed (admin)"))
RUN_LINKS = (Link("status", description="follow the run"), Link("change_rate", description="change its rate"),
             Link("stop_run", description="stop it"))
NEXT_DATALAKE_PAGE = {"path.date": "$request.path.date"}
OPERATIONS = Operations()  # what each route takes and answers: GET /api/openapi.json is built from it


def api(path: str, methods: list[str], doc: Operation | None = None, **options: Any) -> Callable[[View], View]:
    """Route `path` and turn domain errors into JSON responses: the one place that maps them. `doc` describes
    the route in the OpenAPI document; a route without one fails tests/unit/test_openapi.py. A route that
    writes (any method but GET) drops this process's cached reads (`ReadCache`) once it has answered.

    (Chalice answers any other exception from a view itself, before
    middleware sees it, so the mapping wraps the view.)
    """
    if doc is not None:
        OPERATIONS.add(path, methods, doc)
    writes = methods != ["GET"]

    def register(view: View) -> View:
        @functools.wraps(view)
        def translated(*args: Any, **kwargs: Any) -> Any:
            try:
                return view(*args, **kwargs)
            except PacerError as error:
                return _error_response(error)
            finally:
                if writes:  # even a refused one: a 409 is news that the run moved on
                    container().read_cache.invalidate()

        return app.route(path, methods=methods, cors=CORS, **options)(translated)  # type: ignore[no-any-return]

    return register


def read_json_object() -> dict[str, Any]:
    raw = _request().raw_body or b""
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


def parse_body(model: type[Model]) -> Model:
    try:
        return model.model_validate(read_json_object())
    except ValidationError as exc:
        raise invalid(field_errors(exc)) from exc


def _status_body(now: float) -> dict[str, Any]:
    return runs.get_status(container().runs, now).model_dump()


@api("/api/run", ["POST"], content_types=JSON_BODIES, doc=Operation(
    "Start a run of x jobs per y minutes", "runs", {201: RunStatus}, body=StartRun, errors=(409,),
    description="409 if a run is active.", links=RUN_LINKS))
def start_run() -> Any:
    command = parse_body(StartRun)
    runs.start_run(command, container().pacer, time.time())
    return Response(body=_status_body(time.time()), status_code=201)


@api("/api/run", ["PUT"], content_types=JSON_BODIES, doc=Operation(
    "Change the running run's rate", "runs", {200: RunStatus}, body=ChangeRate, errors=(409,),
    description="Bites within 1-2 s. 409 if no run is active.", links=RUN_LINKS[0::2]))
def change_rate() -> Any:
    command = parse_body(ChangeRate)
    runs.change_rate(command, container().pacer, time.time())
    return _status_body(time.time())


@api("/api/stop", ["POST"], content_types=JSON_BODIES, doc=Operation(
    "Stop enqueueing (jobs already enqueued are still processed)", "runs", {200: RunStatus}, errors=(409,),
    description="409 if no run is active."))
def stop_run() -> Any:
    runs.stop_run(container().pacer, time.time())
    return _status_body(time.time())


@api("/api/status", ["GET"], doc=Operation("The run's state, counters and achieved rates", "runs",
                                            {200: RunStatus}))
def status() -> Any:
    return container().read_cache.get("status", lambda: _status_body(time.time()))


@api("/api/health", ["GET"], doc=Operation("Whether the jobs queue and every table answer", "health",
                                            {200: Health, 503: Health}))
def health() -> Any:
    checks = container().health()
    healthy = all(check["ok"] for check in checks.values())
    body = Health.model_validate({"status": "ok" if healthy else "unhealthy", "checks": checks})
    return Response(body=body.model_dump(), status_code=200 if healthy else 503)


@api("/api/workers", ["GET"], doc=Operation("Each job-worker process and the desired concurrency", "fleet",
                                             {200: Fleet}))
def list_workers() -> Any:
    settings = container().settings
    return fleet.fleet_view(container().fleet, time.time(), settings.worker_down_after_s).model_dump()


@api("/api/workers", ["PUT"], content_types=JSON_BODIES, doc=Operation(
    "Set the job-worker processes (admin)", "fleet", {200: Fleet}, body=SetConcurrency, admin=True,
    description="The runtime follows within 5 s. The maximum is the stage's PACER_MAX_WORKER_CONCURRENCY."))
def set_workers() -> Any:
    require_admin()
    command = parse_body(SetConcurrency)
    fleet.set_concurrency(container().fleet, command.concurrency, time.time(),
                          container().settings.max_worker_concurrency)
    return list_workers()


@api("/api/dlq", ["GET"], doc=Operation("The dead letters, with the worker's last failure reason (admin)", "dlq",
                                         {200: DeadLetters}, query=DeadLettersQuery, admin=True))
def list_dead_letters() -> Any:
    require_admin()
    query = parse_query(DeadLettersQuery)
    return dlq.dead_letters(container().jobs_dlq, container().failure_log, query.limit).model_dump()


@api("/api/dlq/redrive", ["POST"], content_types=JSON_BODIES, doc=Operation(
    "Move dead letters back to the jobs queue (admin)", "dlq", {200: Redriven}, query=RedriveQuery, admin=True))
def redrive_dead_letters() -> Any:
    require_admin()
    query = parse_query(RedriveQuery)
    return dlq.redrive(container().jobs_dlq, container().jobs_queue, query.limit).model_dump()


def _caller() -> str | None:
    return _request().headers.get("x-caller-id")


@api("/api/compute", ["POST"], content_types=JSON_BODIES, doc=Operation(
    "Factor a number, fairly among callers", "compute", {202: Accepted}, body=ComputeSubmit, caller="required",
    description="`done` at once for a number already known (answered from the stored result).",
    links=(Link("get_compute", {"request_id": "$response.body#/id"}, "the request and, once done, its factors"),)))
def submit_compute() -> Any:
    command = parse_body(ComputeSubmit)
    c = container()
    accepted = compute.submit(c.compute, c.admission, _caller(), [command.number], c.settings.compute_max_digits,
                              time.time(), "number")
    return Response(body=accepted[0].model_dump(), status_code=202)


@api("/api/compute/batch", ["POST"], content_types=JSON_BODIES, doc=Operation(
    "Factor up to 100 numbers", "compute", {202: AcceptedBatch}, body=ComputeBatchSubmit, caller="required",
    links=(Link("get_compute", {"request_id": "$response.body#/jobs/0/id"}, "the first number's request"),)))
def submit_compute_batch() -> Any:
    command = parse_body(ComputeBatchSubmit)
    c = container()
    accepted = compute.submit(c.compute, c.admission, _caller(), command.numbers, c.settings.compute_max_digits,
                              time.time(), "numbers")
    return Response(body=AcceptedBatch(jobs=accepted).model_dump(), status_code=202)


@api("/api/compute/{request_id}", ["GET"], doc=Operation(
    "A compute request and its factors", "compute", {200: ComputeView}, errors=(404,),
    path_parameters={"request_id": "the id POST /api/compute answered"}))
def get_compute(request_id: str) -> Any:
    found = compute.get(container().compute, request_id)
    if found is None:
        raise NotFound(f"no compute request {request_id}")
    return found.model_dump()


@api("/api/callers", ["GET"], doc=Operation(
    "Each caller per way in: weight, limit, backlog, in flight, throughput and queue waits", "callers", {200: Callers},
    description="One row per caller and way in (`origin`: fair compute or typed jobs). Throughput and waits are "
                "taken over the row's latest `sample_size` settled jobs."))
def list_callers() -> Any:
    c = container()
    return callers.view({"compute": c.compute, "typed": c.typed_jobs}, time.time()).model_dump()


@api("/api/callers/{caller}", ["PUT"], content_types=JSON_BODIES, doc=Operation(
    "Weigh a caller's fair share (admin)", "callers", {200: CallerWeight}, body=SetWeight, admin=True,
    path_parameters={"caller": "an X-Caller-ID: up to 128 printable characters without '#'"},
    description="A caller is one identity across the ways in: the weight applies to its fair compute and its typed "
                "jobs alike, from each one's next admission. A caller may be weighed before it submits."))
def weigh_caller(caller: str) -> Any:
    require_admin()
    command = parse_body(SetWeight)
    weighed = container().admission.set_weight(caller, command.weight, time.time())
    return CallerWeight.model_validate(weighed).model_dump()


@api("/api/jobs", ["POST"], content_types=JSON_BODIES, doc=Operation(
    "Create a typed job", "jobs", {201: JobView, 200: JobView}, body=REGISTRY.new_job_adapter(),
    errors=(409,), caller="optional", idempotency_key=True,
    description="201 when created; 200 with the same job for an Idempotency-Key used before with the same body, "
                "409 with another body.", links=JOB_LINKS))
def submit_job() -> Any:
    c, headers = container(), _request().headers
    job, created = typed.submit(c.typed_jobs, c.registry, c.admission, c.ticks_queue, read_json_object(),
                                headers.get("x-caller-id"), headers.get("idempotency-key"), c.settings.max_attempts,
                                time.time(), c.settings.bot_job_types)
    return Response(body=typed.view(job), status_code=201 if created else 200)


@api("/api/jobs", ["GET"], doc=Operation(
    "List typed jobs: filters, sort, cursor", "jobs", {200: JobList}, query=ListQuery,
    links=(Link("get_job", {"job_id": "$response.body#/jobs/0/id"}, "the first job listed"),)))
def list_jobs() -> Any:
    params = _query_params()
    return container().read_cache.get(("jobs", tuple(sorted(params.items()))),
                                      lambda: typed.list_jobs(container().typed_jobs, container().registry, params))


@api("/api/jobs/dispatch", ["GET"], doc=Operation("Whether typed-job admission is paused; backlog, in flight",
                                                   "jobs", {200: DispatchState}))
def typed_dispatch_state() -> Any:
    return typed.dispatch_state(container().typed_jobs)


@api("/api/jobs/dispatch", ["PUT"], content_types=JSON_BODIES, doc=Operation(
    "Pause or resume typed-job admission (admin)", "jobs", {200: DispatchState}, body=SetDispatch, admin=True))
def pause_typed_dispatch() -> Any:
    require_admin()
    command = parse_body(SetDispatch)
    return typed.set_paused(container().typed_jobs, container().admission, command.paused, time.time())


@api("/api/jobs/limits", ["GET"], doc=Operation("The rate limits on typed jobs, by type and by caller", "jobs",
                                                 {200: RateLimits}))
def typed_rate_limits() -> Any:
    return typed.rate_limits(container().typed_jobs)


@api("/api/jobs/limits", ["PUT"], content_types=JSON_BODIES, doc=Operation(
    "Limit a job type's or a caller's typed jobs to a rate (admin)", "jobs", {200: RateLimit}, body=SetLimit,
    admin=True, description="Jobs per minute, spread evenly (each wall-clock second holds its share); it bites "
                            "within 2 s. `per_minute: null` removes the limit."))
def limit_typed_rate() -> Any:
    require_admin()
    c = container()
    return typed.set_rate_limit(c.typed_jobs, c.registry, parse_body(SetLimit), time.time())


def _populate_defaults() -> typed.PopulateDefaults:
    settings = container().settings
    return typed.PopulateDefaults(count=settings.populate_batch_size, type=settings.populate_type,
                                  bot_job_types=settings.bot_job_types, max_attempts=settings.max_attempts)


@api("/api/jobs/populate", ["POST"], content_types=JSON_BODIES, doc=Operation(
    "Create a batch of generated typed jobs at once (admin)", "jobs", {201: Populated}, body=PopulateJobs, admin=True,
    caller="optional", description="Seed 004's steady supply, on demand: `count` jobs (PACER_POPULATE_BATCH_SIZE) "
    "of `type` (PACER_POPULATE_TYPE; unset, each type in turn) from the type's example payload, from the caller "
    "`populate` unless X-Caller-ID names one. The body is optional. The `populate_jobs` schedule makes the same "
    "batch every PACER_POPULATE_INTERVAL_S when that is set."))
def populate_jobs_now() -> Any:
    require_admin()
    c = container()
    jobs = typed.populate(c.typed_jobs, c.registry, c.admission, parse_body(PopulateJobs), _caller(),
                          _populate_defaults(), time.time())
    return Response(body=Populated(jobs=[typed.summary(job) for job in jobs]).model_dump(), status_code=201)


@api("/api/jobs/{job_id}", ["GET"], doc=Operation("A typed job with its timeline", "jobs", {200: JobView},
                                                   errors=(404,), path_parameters=JOB_ID_PARAMETER,
                                                   links=JOB_LINKS[1:]))
def get_job(job_id: str) -> Any:
    return typed.view(typed.get(container().typed_jobs, job_id))


@api("/api/jobs/{job_id}", ["DELETE"], doc=Operation(
    "Cancel a pending typed job", "jobs", {200: JobView}, errors=(404, 409), path_parameters=JOB_ID_PARAMETER,
    description="409 once it runs or has finished.", links=JOB_LINKS[:1]))
def cancel_job(job_id: str) -> Any:
    return typed.view(typed.cancel(container().typed_jobs, container().admission, job_id, time.time()))


@api("/api/jobs/{job_id}/retry", ["POST"], content_types=JSON_BODIES, doc=Operation(
    "Retry a failed typed job (admin)", "jobs", {200: JobView}, errors=(404, 409), admin=True,
    path_parameters=JOB_ID_PARAMETER, description="409 unless the job is failed.", links=JOB_LINKS[:2]))
def retry_job(job_id: str) -> Any:
    require_admin()
    return typed.view(typed.retry(container().typed_jobs, container().admission, job_id, time.time()))


@api("/api/stats", ["GET"], doc=Operation("Typed jobs by status and type; an hour of throughput", "jobs",
                                           {200: StatsView}))
def job_stats() -> Any:
    return typed.stats(container().typed_jobs, container().registry, time.time())


# ---- bots: workers outside Lambda pull typed jobs whose target is "bot" (issue 14) ----

BOT_PARAMETER = {"bot_id": "a bot's id, b- and 16 hex digits"}
BOT_JOB_PARAMETERS = {**BOT_PARAMETER, **JOB_ID_PARAMETER}


def _bot(bot_id: str) -> Any:
    """The bot the path names, if the request carries its token."""
    return bots.authenticate(container().bots, bot_id, _request().headers.get("authorization"))


@api("/api/bots", ["POST"], content_types=JSON_BODIES, doc=Operation(
    "Register a bot: its token is in this answer only", "bots", {201: Registered}, body=RegisterBot,
    description="Keep `token`: every call of the bot sends `Authorization: Bearer <token>`. Only its sha256 is "
                "stored, so it cannot be shown again."))
def register_bot() -> Any:
    c = container()
    registered = bots.register(c.bots, c.registry, parse_body(RegisterBot), time.time(),
                               c.settings.worker_down_after_s)
    return Response(body=registered.model_dump(), status_code=201)


@api("/api/bots", ["GET"], doc=Operation("Every bot: state, the jobs it holds, its lease, jobs done and failed",
                                          "bots", {200: BotList}))
def list_bots() -> Any:
    return bots.list_bots(container().bots, time.time(), container().settings.worker_down_after_s).model_dump()


@api("/api/bots/count", ["GET"], doc=Operation(
    "How many reference bots the local stack runs", "bots", {200: BotCount},
    description="The count an admin set with PUT; null until one (or `make up`) sets it. Advisory on AWS."))
def get_bot_count() -> Any:
    return fleet.bot_count(container().fleet).model_dump()


@api("/api/bots/count", ["PUT"], content_types=JSON_BODIES, doc=Operation(
    "Set how many reference bots the local stack runs (admin)", "bots", {200: BotCount}, body=SetBotCount,
    admin=True, description="`make up` starts or stops `python -m infra.bot` processes to match within about 2 s; "
                            "bots that start register themselves and are listed by GET /api/bots. On AWS bots run on "
                            "their owners' machines, so it is advisory. The maximum is the stage's PACER_MAX_BOTS."))
def set_bot_count() -> Any:
    require_admin()
    command = parse_body(SetBotCount)
    c = container()
    return fleet.set_bot_count(c.fleet, command.count, time.time(), c.settings.max_bots).model_dump()


@api("/api/bots/{bot_id}", ["GET"], doc=Operation(
    "A bot with its history", "bots", {200: BotView}, errors=(404,), path_parameters=BOT_PARAMETER))
def get_bot(bot_id: str) -> Any:
    return bots.view(container().bots, bot_id, time.time(), container().settings.worker_down_after_s).model_dump()


@api("/api/bots/{bot_id}", ["DELETE"], doc=Operation(
    "Delete a bot (admin), or deregister (the bot itself); the jobs it holds go back to their backlogs at once",
    "bots", {204: NO_CONTENT}, admin=True, bot=True, errors=(404, 409), path_parameters=BOT_PARAMETER,
    description="With the admin token, any bot; with a bot's own token, that bot only: a bot that stops on purpose "
                "deregisters, so it is not shown `idle` until it turns `down`, and its job does not wait for its "
                "lease to run out."))
def delete_bot(bot_id: str) -> Any:
    token = (_request().headers.get("authorization") or "").partition(" ")[2]
    if token.strip().startswith(bots.TOKEN_PREFIX):
        _bot(bot_id)  # a bot's token: only for itself
    else:
        require_admin()
    bots.delete(container().bots, container().bot_ledger, bot_id, time.time())
    return Response(body="", status_code=204)


@api("/api/bots/{bot_id}/heartbeat", ["POST"], content_types=JSON_BODIES, doc=Operation(
    "The bot is alive: renews the lease of every job it holds", "bots", {200: BotSummary}, bot=True,
    path_parameters=BOT_PARAMETER, description="Every 30 s; silent for PACER_WORKER_DOWN_AFTER_S (120 s) it shows "
                                               "`down`, and its jobs go back once its lease (PACER_BOT_LEASE_S) runs out."))
def bot_heartbeat(bot_id: str) -> Any:
    c = container()
    return bots.heartbeat(c.bots, _bot(bot_id), time.time(), c.settings.bot_lease_s,
                          c.settings.worker_down_after_s).model_dump()


@api("/api/bots/{bot_id}/claim", ["POST"], content_types=JSON_BODIES, doc=Operation(
    "Claim the next job this bot may run, with a lease", "bots", {200: Claimed, 204: NO_CONTENT}, body=Claim,
    bot=True, errors=(409,), path_parameters=BOT_PARAMETER,
    description="Fair across callers (fewest bot jobs in flight per weight first), highest priority then oldest "
                "within a caller, within the rate limits of PUT /api/jobs/limits. 204 when there is none within "
                "`wait_s`. 409 while the bot holds `max_jobs`."))
def claim_job(bot_id: str) -> Any:
    command = parse_body(Claim)
    c = container()
    claimed = bots.claim(c.bots, c.bot_ledger, c.registry, _bot(bot_id), command, time.time, c.settings.bot_lease_s,
                         time.sleep)
    return claimed.model_dump() if claimed else Response(body="", status_code=204)


@api("/api/bots/{bot_id}/jobs/{job_id}/extend", ["POST"], content_types=JSON_BODIES, doc=Operation(
    "Renew the lease on a job the bot holds", "bots", {200: Leased}, bot=True, errors=(409,),
    path_parameters=BOT_JOB_PARAMETERS, description="409 unless the bot holds the job."))
def extend_lease(bot_id: str, job_id: str) -> Any:
    c = container()
    return bots.extend(c.bots, _bot(bot_id), job_id, time.time(), c.settings.bot_lease_s).model_dump()


@api("/api/bots/{bot_id}/jobs/{job_id}/complete", ["POST"], content_types=JSON_BODIES, doc=Operation(
    "Complete a job the bot holds, with its result", "bots", {200: JobView}, body=Complete, bot=True,
    errors=(409,), path_parameters=BOT_JOB_PARAMETERS,
    description="Recorded once by the result ledger. 409 if the bot no longer holds the job (its lease ran out "
                "and the job went back, or it was settled); nothing changes then."))
def complete_job(bot_id: str, job_id: str) -> Any:
    command = parse_body(Complete)
    c = container()
    return typed.view(bots.complete(c.bots, c.bot_ledger, _bot(bot_id), job_id, command, time.time()))


@api("/api/bots/{bot_id}/jobs/{job_id}/fail", ["POST"], content_types=JSON_BODIES, doc=Operation(
    "Fail a job the bot holds", "bots", {200: JobView}, body=Fail, bot=True, errors=(409,),
    path_parameters=BOT_JOB_PARAMETERS,
    description="Retryable and attempts left: the job goes back to its backlog after the retry backoff. Otherwise "
                "it is recorded `failed`. 409 if the bot no longer holds the job."))
def fail_job(bot_id: str, job_id: str) -> Any:
    command = parse_body(Fail)
    c = container()
    return typed.view(bots.fail(c.bots, c.bot_ledger, _bot(bot_id), job_id, command, time.time(), c.retry_policy))


@api("/api/openapi.json", ["GET"], doc=Operation("This API described: OpenAPI 3.1", "docs",
                                                 {200: TypeAdapter(dict[str, Any])}))
def openapi() -> Any:
    return openapi_document(app.routes, OPERATIONS, container().settings)


def _records(event: SQSEvent) -> list[Record]:
    records = []
    for record in event:
        raw = record.to_dict()
        records.append(Record(message_id=raw["messageId"], body=record.body, receipt_handle=raw["receiptHandle"],
                              receive_count=int(raw.get("attributes", {}).get("ApproximateReceiveCount", "1"))))
    return records


@app.on_sqs_message(queue=JOBS_QUEUE.name, batch_size=10)
def process_jobs(event: SQSEvent) -> dict[str, list[dict[str, str]]]:
    return container().worker.process(_records(event), time.time).response()


def worker_started(source: str) -> None:
    """The local runtime calls this in each worker process as it starts (`--worker-start-hook
    app.worker_started`): a job worker beats at once, so GET /api/workers lists it idle before its first
    batch. Lambda has no such moment but the first invocation, where `process_jobs` starts the heartbeat
    anyway, so nothing here runs at import time."""
    if source == fleet.JOBS_SOURCE:
        container().heartbeat.start()


@app.on_sqs_message(queue=TICKS_QUEUE.name, batch_size=1, maximum_concurrency=2)
def pace_tick(event: SQSEvent) -> None:
    """The ticks queue: a run's scheduler ticks, wake-ups for scheduled typed jobs, and requests to admit."""
    for record in event:
        app.log.debug("clock %s: %s", record.body, container().clock.on_message(record.body, time.time()))


@app.schedule(Rate(1, unit=Rate.MINUTES))
def pacing_watchdog(event: Any) -> None:
    app.log.info("watchdog: %s", container().clock.watchdog(time.time()))


@app.schedule(Rate(1, unit=Rate.MINUTES))
def populate_jobs(event: Any) -> None:
    """Seed 004's steady supply: a batch every PACER_POPULATE_INTERVAL_S (off unless set). It looks each minute, and
    one invocation per interval takes the turn (a conditional write), so a duplicate fire makes no second batch."""
    c = container()
    jobs = typed.populate_when_due(c.typed_jobs, c.registry, c.admission, c.settings.populate_interval_s,
                                   _populate_defaults(), time.time())
    if jobs:
        app.log.info("populate: %d typed jobs", len(jobs))


# ---- the datalake and the metrics summary (seed 004) ----

EXPORT_URL_EXPIRES_S = 3600


@app.on_dynamodb_record(stream_arn=RESULTS_TABLE.stream_arn, batch_size=1000, maximum_batching_window_in_seconds=1,
                        starting_position="TRIM_HORIZON")
def results_to_datalake(event: DynamoDBEvent) -> None:
    """Each batch of new result items becomes one NDJSON object per date. Raising hands the same batch over
    again, which writes the same keys (chalicelib/datalake/service.py)."""
    batch = batch_of(event.to_dict()["Records"])
    if batch is not None:
        c = container()
        datalake.append_batch(c.datalake_objects, c.datalake_catalog, batch, time.time())


@api("/api/datalake/stats", ["GET"], doc=Operation(
    "The datalake per date and in total: objects, records, bytes, done, failed, success rate", "datalake",
    {200: DatalakeStats}))
def datalake_stats() -> Any:
    return datalake.stats(container().datalake_catalog).model_dump()


@api("/api/datalake/export/{date}", ["GET"], doc=Operation(
    "A page of one UTC date's results as NDJSON, each job id once", "datalake", {200: TypeAdapter(str)},
    query=ExportQuery, media_type="application/x-ndjson", path_parameters={"date": "YYYY-MM-DD (UTC)"},
    description="`X-Next-Cursor` and `Link` give the next page. A date without data answers 200 with an empty body.",
    links=(Link("datalake_export", {**NEXT_DATALAKE_PAGE, "query.cursor": "$response.header.X-Next-Cursor"},
                "the next page (absent on the last)"),)))
def datalake_export(date: str) -> Any:
    """A page of the date's records as NDJSON; `X-Next-Cursor` (and a Link header) give the next page."""
    c = container()
    query = parse_query(ExportQuery)
    page = datalake.export_page(c.datalake_objects, date, query.cursor, c.settings.datalake_page_records)
    headers: dict[str, str | list[str]] = {"Content-Type": "application/x-ndjson", "X-Records": str(page.records),
                                           "Content-Disposition": f'attachment; filename="results-{date}.ndjson"',
                                           "Access-Control-Expose-Headers": "X-Next-Cursor, X-Records, Link"}
    if page.next_cursor:
        headers["X-Next-Cursor"] = page.next_cursor
        headers["Link"] = f'</api/datalake/export/{date}?cursor={page.next_cursor}>; rel="next"'
    return Response(body=page.body.decode(), status_code=200, headers=headers)


@api("/api/datalake/objects/{date}", ["GET"], doc=Operation(
    "One UTC date's datalake objects, each with a presigned URL (how a large day is fetched on AWS)", "datalake",
    {200: ObjectLinks}, query=ObjectsQuery, path_parameters={"date": "YYYY-MM-DD (UTC)"},
    links=(Link("datalake_objects", {**NEXT_DATALAKE_PAGE, "query.cursor": "$response.body#/next"},
                "the next page (null on the last)"),)))
def datalake_objects(date: str) -> Any:
    query = parse_query(ObjectsQuery)
    return datalake.object_links(container().datalake_objects, date, query.cursor, query.limit,
                                 EXPORT_URL_EXPIRES_S).model_dump()


@api("/api/metrics/summary", ["GET"], doc=Operation(
    "The system at a glance: jobs by status and way in (admitted, in flight, done, failed, retries), throughput, "
    "failure rate, waits, workers, DLQ, lag",
    "datalake", {200: TypeAdapter(dict[str, Any])}))
def metrics_summary() -> Any:
    c, now = container(), time.time()
    return metrics.summary(c.datalake_catalog, fleet.fleet_view(c.fleet, now, c.settings.worker_down_after_s),
                           c.jobs_queue.depth(), c.jobs_dlq.depth(), now, metrics.in_flight(c.runs, c.admission))
